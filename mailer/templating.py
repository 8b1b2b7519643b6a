"""Jinja filters and globals shared by every template."""

from zoneinfo import ZoneInfo

from flask import Flask, current_app, request
from flask_babel import ngettext
from flask_login import current_user

from mailer.i18n import LanguageForm
from mailer.i18n import lazy_text as _l
from mailer.listing import encode_cursor
from mailer.permissions import can_view_all, is_admin
from mailer.services.message_templates import readable_subject
from mailer.timezones import user_zone
from mailer.words import MAILING_STATUS_WORDS, delivery_status_word, word

# The colour of a status badge, one per status word, whatever it is the status of (a mailing, a run,
# a delivery or a try): the same word never changes colour from one page to the next.
STATUS_BADGES = {
    # mailings ("disabled" is a mailing a manager disabled)
    "created": "text-bg-secondary",
    "running": "text-bg-primary",
    "finished": "text-bg-success",
    "disabled": "text-bg-danger",
    # runs
    "queued": "text-bg-secondary",
    "sending": "text-bg-primary",
    "paused": "text-bg-info",
    "done": "text-bg-success",
    "cancelled": "text-bg-warning",
    # deliveries
    "pending": "text-bg-light border",
    "sent": "text-bg-success",
    "failed": "text-bg-danger",
    "skipped": "text-bg-secondary",
    # tries
    "success": "text-bg-success",
    "failure": "text-bg-danger",
    "unknown": "text-bg-warning",
    # clients, sender addresses and accounts
    "unsubscribed": "text-bg-secondary",
    "confirmed": "text-bg-success",
    "unconfirmed": "text-bg-warning",
    "active": "text-bg-success",
    "blocked": "text-bg-danger",
}


def badge_class(status) -> str:
    """The badge classes of a status (an enum member or its value)."""
    return STATUS_BADGES.get(getattr(status, "value", status), "text-bg-secondary")


# What a list counts, in words: the exact count, and "more than" when the count stopped at its cap.
# Each pair is spelled out for the catalogue (Russian has three plural forms, not two).
COUNT_WORDS = {
    "clients": (
        lambda n: ngettext("%(num)s client.", "%(num)s clients.", n),
        lambda n: ngettext("More than %(num)s client.", "More than %(num)s clients.", n),
    ),
    "matching clients": (
        lambda n: ngettext("%(num)s client matches.", "%(num)s clients match.", n),
        lambda n: ngettext("More than %(num)s client match.", "More than %(num)s clients match.", n),
    ),
    "messages": (
        lambda n: ngettext("%(num)s message.", "%(num)s messages.", n),
        lambda n: ngettext("More than %(num)s message.", "More than %(num)s messages.", n),
    ),
    "mailings": (
        lambda n: ngettext("%(num)s mailing.", "%(num)s mailings.", n),
        lambda n: ngettext("More than %(num)s mailing.", "More than %(num)s mailings.", n),
    ),
    "users": (
        lambda n: ngettext("%(num)s user.", "%(num)s users.", n),
        lambda n: ngettext("More than %(num)s user.", "More than %(num)s users.", n),
    ),
    "attempts": (
        lambda n: ngettext("%(num)s attempt.", "%(num)s attempts.", n),
        lambda n: ngettext("More than %(num)s attempt.", "More than %(num)s attempts.", n),
    ),
    "recipients": (
        lambda n: ngettext("%(num)s recipient.", "%(num)s recipients.", n),
        lambda n: ngettext("More than %(num)s recipient.", "More than %(num)s recipients.", n),
    ),
}


def count_words(page, what: str) -> str:
    """ "25 clients." or "More than 1000 clients." for the first page of a list; "" when the
    page was not counted (any page after the first)."""
    if page.count is None:
        return ""
    exact, more = COUNT_WORDS[what]
    return (more if page.more else exact)(page.count)


def init_templating(app: Flask) -> None:
    app.add_template_filter(badge_class)
    app.add_template_filter(readable_subject)
    app.add_template_filter(encode_cursor, "cursor")
    app.add_template_filter(word)
    app.add_template_filter(delivery_status_word)
    # A global rather than a context variable: the list macros are imported without the context.
    app.jinja_env.globals["count_words"] = count_words
    app.jinja_env.globals["MAILING_STATUS_WORDS"] = MAILING_STATUS_WORDS

    @app.context_processor
    def globals_for_templates():
        zone = user_zone(current_user)
        return {
            "show_outbox": current_app.config.get("SHOW_OUTBOX", False),
            "user_timezone": zone.key if isinstance(zone, ZoneInfo) else "UTC",
            "nav_sections": nav_sections,
            "language_form": LanguageForm,
        }


# The navigation bar: (endpoint, label, who may use it). A section shows when the user's role
# allows it.
NAV_SECTIONS = [
    ("clients.index", _l("Clients"), "user"),
    ("messages.index", _l("Messages"), "user"),
    ("mailings.index", _l("Mailings"), "user"),
    ("senders.index", _l("Senders"), "user"),
    ("reports.index", _l("Reports"), "user"),
    ("users.index", _l("Users"), "manager"),
    ("admin.index", _l("Admin"), "admin"),
    ("rq_dashboard.queues_overview", _l("Queues"), "admin"),
    ("main.outbox_index", _l("Outbox"), "outbox"),
]


def nav_sections() -> list[tuple[str, str, bool]]:
    """(endpoint, label, is the section of the page shown) of each section the user may use."""
    allowed = {"user"}
    if can_view_all():
        allowed.add("manager")
    if is_admin():
        allowed.add("admin")
        if current_app.config.get("SHOW_OUTBOX"):
            allowed.add("outbox")
    return [(endpoint, label, is_current_section(endpoint)) for endpoint, label, who in NAV_SECTIONS if who in allowed]


def is_current_section(endpoint: str) -> bool:
    """A section is the blueprint of its page; the outbox pages are the part of `main` under /outbox."""
    if endpoint.startswith("main."):
        return (request.endpoint or "").startswith("main.outbox")
    return request.blueprint == endpoint.partition(".")[0]

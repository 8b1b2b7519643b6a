"""Jinja filters and globals shared by every template."""
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from flask_login import current_user

from mailer.i18n import LanguageForm
from mailer.i18n import lazy_text as _l
from mailer.services.rendering import readable_subject
from mailer.timezones import user_zone
from mailer.words import delivery_status_word, word


def init_templating(app: Flask) -> None:
    app.add_template_filter(readable_subject)
    app.add_template_filter(word)
    app.add_template_filter(delivery_status_word)

    @app.context_processor
    def globals_for_templates():
        zone = user_zone(current_user)
        return {
            "show_outbox": current_app.config.get("SHOW_OUTBOX", False),
            "user_timezone": zone.key if isinstance(zone, ZoneInfo) else "UTC",
            "nav_sections": nav_sections,
            "language_form": LanguageForm,
        }


# The navigation bar: (endpoint, label, who may use it). A section shows only when its
# blueprint is registered and the user's role allows it.
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


def nav_sections() -> list[tuple[str, str]]:
    allowed = {"user"}
    if current_user.is_authenticated and current_user.is_manager:
        allowed.add("manager")
    if current_user.is_authenticated and current_user.is_admin:
        allowed.add("admin")
        if current_app.config.get("SHOW_OUTBOX"):
            allowed.add("outbox")
    return [
        (endpoint, label)
        for endpoint, label, who in NAV_SECTIONS
        if who in allowed and endpoint in current_app.view_functions
    ]

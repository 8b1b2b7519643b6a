"""Jinja filters and globals shared by every template."""
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from flask_login import current_user

from mailer.permissions import can_view_all, is_admin
from mailer.services.message_templates import readable_subject
from mailer.timezones import user_zone


def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Show a UTC timestamp in the viewer's time zone."""
    if value is None:
        return ""
    return value.astimezone(user_zone(current_user)).strftime(fmt)


def init_templating(app: Flask) -> None:
    app.add_template_filter(localtime)
    app.add_template_filter(readable_subject)

    @app.context_processor
    def globals_for_templates():
        zone = user_zone(current_user)
        return {
            "show_outbox": current_app.config.get("SHOW_OUTBOX", False),
            "user_timezone": zone.key if isinstance(zone, ZoneInfo) else "UTC",
            "nav_sections": nav_sections,
        }


# The navigation bar: (endpoint, label, who may use it). A section shows when the user's role
# allows it.
NAV_SECTIONS = [
    ("clients.index", "Clients", "user"),
    ("messages.index", "Messages", "user"),
    ("mailings.index", "Mailings", "user"),
    ("senders.index", "Senders", "user"),
    ("reports.index", "Reports", "user"),
    ("users.index", "Users", "manager"),
    ("admin.index", "Admin", "admin"),
    ("rq_dashboard.queues_overview", "Queues", "admin"),
    ("main.outbox_index", "Outbox", "outbox"),
]


def nav_sections() -> list[tuple[str, str]]:
    allowed = {"user"}
    if can_view_all():
        allowed.add("manager")
    if is_admin():
        allowed.add("admin")
        if current_app.config.get("SHOW_OUTBOX"):
            allowed.add("outbox")
    return [
        (endpoint, label)
        for endpoint, label, who in NAV_SECTIONS
        if who in allowed
    ]

from flask import abort, current_app, render_template
from flask_login import current_user, login_required

from mailer.main import bp
from mailer.permissions import admin_required
from mailer.services import outbox


@bp.route("/")
def index():
    if not current_user.is_authenticated:
        return render_template("main/landing.html")
    return render_template("main/home.html")


def outbox_enabled() -> None:
    if not current_app.config.get("SHOW_OUTBOX"):
        abort(404)


@bp.route("/outbox")
@login_required
@admin_required
def outbox_index():
    outbox_enabled()
    return render_template("main/outbox.html", messages=outbox.list_messages())


@bp.route("/outbox/<name>")
@login_required
@admin_required
def outbox_message(name: str):
    outbox_enabled()
    message = outbox.read_message(name)
    if message is None:
        abort(404)
    text, html = outbox.message_parts(message)
    return render_template("main/outbox_message.html", name=name, message=message, text=text, html=html)

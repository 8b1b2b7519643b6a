from flask import abort, current_app, render_template, request, session
from flask_login import current_user, login_required

from mailer.extensions import db
from mailer.i18n import SESSION_KEY, LanguageForm, is_language
from mailer.i18n import lazy_text as _l
from mailer.main import bp
from mailer.permissions import admin_required
from mailer.security import mail_preview_response
from mailer.services import outbox, stats
from mailer.urls import redirect_next

# The first steps of a new user, in order.
QUICK_LINKS = [
    ("clients.create", _l("New client"), _l("Add the people you write to.")),
    ("messages.create", _l("New message"), _l("Write a subject and a body.")),
    ("mailings.create", _l("New mailing"), _l("Send a message to clients, once or on a schedule.")),
]


@bp.route("/")
def index():
    if not current_user.is_authenticated:
        return render_template("main/landing.html")
    return render_template("main/home.html", figures=stats.home_figures(current_user), quick_links=QUICK_LINKS)


@bp.route("/language", methods=["POST"])
def set_language():
    """The navbar's switcher: kept in the session, and in the profile of a logged-in user."""
    form = LanguageForm()
    if form.validate_on_submit() and is_language(form.language.data):
        session[SESSION_KEY] = form.language.data
        if current_user.is_authenticated:
            current_user.locale = form.language.data
            db.session.commit()
    return redirect_next(form.next.data)


def outbox_enabled() -> None:
    if not current_app.config.get("SHOW_OUTBOX"):
        abort(404)


@bp.route("/outbox")
@login_required
@admin_required
def outbox_index():
    outbox_enabled()
    search = request.args.get("q", "").strip()[:200]
    listing = outbox.list_messages(search, request.args.get("page", 1, type=int))
    return render_template("main/outbox.html", listing=listing, messages=listing.messages, search=search)


@bp.route("/outbox/<name>")
@login_required
@admin_required
def outbox_message(name: str):
    message = outbox_message_or_404(name)
    text, html = outbox.message_parts(message)
    return render_template("main/outbox_message.html", name=name, message=message, text=text, html=html)


@bp.route("/outbox/<name>/html")
@login_required
@admin_required
def outbox_message_html(name: str):
    """The HTML part alone, for the sandboxed frame of the message's page."""
    return mail_preview_response(outbox.message_parts(outbox_message_or_404(name))[1])


def outbox_message_or_404(name: str):
    outbox_enabled()
    message = outbox.read_message(name)
    if message is None:
        abort(404)
    return message

"""Flask-Login set-up: how a session finds its user, and when it ends."""

from flask import Flask, flash, g, redirect, request, session
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import login_url
from sqlalchemy.orm import joinedload

from mailer.extensions import db, login_manager
from mailer.i18n import SESSION_KEY, is_language, language_for
from mailer.i18n import lazy_text as _l
from mailer.models import User


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """A session holds "<user id>:<auth version>".

    It ends (the user is logged out) when the user is blocked or when the version moved on,
    which happens when the password changes or the user is blocked.
    """
    user_id, _, version = session_id.partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    # The roles in the same statement: every request needs them for its permissions.
    user = db.session.get(User, int(user_id), options=[joinedload(User.roles)])
    if user is not None and not user.is_active:
        tell_blocked(user)
        return None
    if user is None or user.auth_version != int(version):
        return None
    return user


def tell_blocked(user: User) -> None:
    """A blocked user's session ends at their next request, and they are told why, rather than
    only asked to log in."""
    session.pop("_user_id", None)
    # Told in the user's own language, which the pages after it keep.
    if is_language(user.locale):
        session[SESSION_KEY] = user.locale
    with force_locale(language_for(user)):
        told = _("Your account has been blocked by a manager, so you have been logged out.")
        if user.blocked_reason:
            told += " " + _("The reason given: “%(reason)s”.", reason=user.blocked_reason)
        flash(told + " " + _("Contact the site's managers if you think this is a mistake."), "danger")
    g.account_blocked = True


@login_manager.unauthorized_handler
def ask_to_log_in():
    """Flask-Login's own answer (the login form, coming back here after), without "please log
    in" for a blocked user, who was just told why they are out."""
    if not g.pop("account_blocked", False):
        flash(str(login_manager.login_message), login_manager.login_message_category)
    return redirect(login_url(login_manager.login_view, request.url))


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.localize_callback = str
    login_manager.login_message_category = "info"
    # Ends the session when the address or browser changes (Flask-Login's session protection).
    login_manager.session_protection = "basic"

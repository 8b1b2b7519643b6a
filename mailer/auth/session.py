"""Flask-Login set-up: how a session finds its user, and when it ends."""
from flask import Flask

from mailer.extensions import db, login_manager
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
    user = db.session.get(User, int(user_id))
    if user is None or not user.is_active or user.auth_version != int(version):
        return None
    return user


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see this page."
    login_manager.login_message_category = "info"
    # Ends the session when the address or browser changes (Flask-Login's session protection).
    login_manager.session_protection = "basic"

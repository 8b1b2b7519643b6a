from flask import Blueprint

bp = Blueprint("unsubscribe", __name__)

from mailer.unsubscribe import routes  # noqa: E402,F401

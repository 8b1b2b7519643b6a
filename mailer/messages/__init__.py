from flask import Blueprint

bp = Blueprint("messages", __name__)

from mailer.messages import routes  # noqa: E402,F401

from flask import Blueprint

bp = Blueprint("runs", __name__)

from mailer.runs import routes  # noqa: E402,F401

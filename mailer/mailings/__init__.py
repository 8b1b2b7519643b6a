from flask import Blueprint

bp = Blueprint("mailings", __name__)

from mailer.mailings import routes  # noqa: E402,F401

from flask import Blueprint

bp = Blueprint("reports", __name__)

from mailer.reports import routes  # noqa: E402,F401

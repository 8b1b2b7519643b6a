from flask import Blueprint

bp = Blueprint("users", __name__)

from mailer.users import routes  # noqa: E402,F401

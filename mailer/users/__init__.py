from flask import Blueprint

from mailer.permissions import require_login

bp = Blueprint("users", __name__)
bp.before_request(require_login)

from mailer.users import routes  # noqa: E402,F401

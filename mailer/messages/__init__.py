from flask import Blueprint

from mailer.permissions import require_login

bp = Blueprint("messages", __name__)
bp.before_request(require_login)

from mailer.messages import routes  # noqa: E402,F401

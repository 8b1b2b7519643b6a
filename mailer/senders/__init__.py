from flask import Blueprint

from mailer.permissions import require_login

bp = Blueprint("senders", __name__)
bp.before_request(require_login)

from mailer.senders import routes  # noqa: E402,F401

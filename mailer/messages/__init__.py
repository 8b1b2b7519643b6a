from flask import Blueprint

from mailer.permissions import require_login

# The blueprint's own static folder holds the script of the live preview.
bp = Blueprint("messages", __name__, static_folder="static")
bp.before_request(require_login)

from mailer.messages import routes  # noqa: E402,F401

from flask import Blueprint

from mailer.permissions import require_login

# The blueprint's own static folder holds the client picker's script and style.
bp = Blueprint("mailings", __name__, static_folder="static")
bp.before_request(require_login)

from mailer.mailings import routes  # noqa: E402,F401

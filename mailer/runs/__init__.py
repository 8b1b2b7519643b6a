from flask import Blueprint

from mailer.permissions import require_login

# The blueprint's own static folder holds the script that keeps the run page up to date.
bp = Blueprint("runs", __name__, static_folder="static")
bp.before_request(require_login)

from mailer.runs import routes  # noqa: E402,F401

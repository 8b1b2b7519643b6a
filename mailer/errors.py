"""Error pages that speak to people."""

from flask import Flask, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from mailer.extensions import db
from mailer.i18n import lazy_text as _l

TITLES = {
    400: _l("Bad request"),
    403: _l("Not allowed"),
    404: _l("Page not found"),
    405: _l("Method not allowed"),
    413: _l("File too large"),
    414: _l("Address too long"),
    429: _l("Too many attempts"),
    500: _l("Something went wrong"),
}

EXPLANATIONS = {
    400: _l("The request could not be understood."),
    403: _l("You are not allowed to do this."),
    404: _l("There is nothing here. Check the address, or go back to the home page."),
    405: _l("This page cannot be used this way."),
    413: _l("The file you sent is larger than this site accepts."),
    414: _l("The address is longer than any page of this site uses."),
    429: _l("Too many attempts in a short time. Wait a minute, then try again."),
    500: _l("An unexpected error happened. It has been logged; please try again."),
}


def render_error(code: int, message: str | None = None):
    return (
        render_template(
            "errors/error.html",
            code=code,
            title=TITLES.get(code, _l("Error")),
            message=message or EXPLANATIONS.get(code, ""),
        ),
        code,
    )


def init_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_error(400, _("The form expired or was not sent by this site. Reload the page and try again."))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        # A message given with abort(code, message) is for the person; Werkzeug's defaults are not.
        custom = error.description if error.description != type(error).description else None
        return render_error(error.code, custom)

    @app.errorhandler(500)
    def server_error(error):
        db.session.rollback()
        return render_error(500)

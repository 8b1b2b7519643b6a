"""Error pages that speak to people."""
from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from mailer.extensions import db

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Method not allowed",
    413: "File too large",
    414: "Address too long",
    429: "Too many attempts",
    500: "Something went wrong",
}

EXPLANATIONS = {
    400: "The request could not be understood.",
    403: "You are not allowed to do this.",
    404: "There is nothing here. Check the address, or go back to the home page.",
    405: "This page cannot be used this way.",
    413: "The file you sent is larger than this site accepts.",
    414: "The address is longer than any page of this site uses.",
    429: "Too many attempts in a short time. Wait a minute, then try again.",
    500: "An unexpected error happened. It has been logged; please try again.",
}


def render_error(code: int, message: str | None = None):
    return (
        render_template(
            "errors/error.html",
            code=code,
            title=TITLES.get(code, "Error"),
            message=message or EXPLANATIONS.get(code, ""),
        ),
        code,
    )


def init_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_error(400, "The form expired or was not sent by this site. Reload the page and try again.")

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

"""What every response and request goes through: security headers, the trusted proxies, and the
refusal of input that no page can use (NUL bytes)."""

from flask import Flask, Response, abort, request
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

# The site's own pages load scripts, styles, images and frames from the site only, with no inline
# script or style. Nobody may frame them (the Send now, Delete and Block buttons stay unclickable
# from another site).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Flask-Admin and the RQ dashboard ship templates with inline scripts and styles; only admins
# reach them, and they still load nothing from elsewhere and cannot be framed.
THIRD_PARTY_PAGES_POLICY = CONTENT_SECURITY_POLICY.replace(
    "script-src 'self'", "script-src 'self' 'unsafe-inline'"
).replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
THIRD_PARTY_PREFIXES = ("/admin", "/rq")
# An e-mail's HTML shown inside a page (a sandboxed frame of this site): its inline styles and
# remote images show as in a mail program; scripts, forms and plugins do not run.
MAIL_PREVIEW_POLICY = "; ".join(
    [
        "default-src 'none'",
        "img-src http: https: data:",
        "style-src 'unsafe-inline'",
        "font-src http: https: data:",
        "frame-ancestors 'self'",
        "sandbox",
    ]
)

MAX_QUERY_BYTES = 8192

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Token links (reset, confirmation, unsubscribe) must not leak to other sites.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def init_security(app: Flask) -> None:
    trusted_proxies = app.config.get("TRUSTED_PROXIES", 0)
    if trusted_proxies:
        # The client's address (per-address login limits), scheme and host come from the
        # X-Forwarded-* headers that this many proxies in front of the app add.
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=trusted_proxies,
            x_proto=trusted_proxies,
            x_host=trusted_proxies,
            x_prefix=trusted_proxies,
        )
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_unusable_input)
    app.after_request(add_security_headers)


def refuse_unusable_input():
    """Refuse, before any view reads it, input that no page of this site can use.

    An address longer than MAX_QUERY_BYTES (no link or filter of the site comes near it; gunicorn
    itself refuses request lines past 4 KB). A NUL byte anywhere in the address or a form: it has
    no use in any field, and PostgreSQL cannot store one.
    """
    if len(request.query_string) > MAX_QUERY_BYTES:
        abort(414)
    if "\x00" in request.path or any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        abort(400, _("The address contains a NUL character, which no page accepts."))
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        if any("\x00" in key or "\x00" in value for key, value in request.form.items(multi=True)):
            abort(400, _("The form contains a NUL character, which no field accepts."))
    return None


def add_security_headers(response: Response) -> Response:
    if "Content-Security-Policy" not in response.headers:
        third_party = request.path.startswith(THIRD_PARTY_PREFIXES)
        response.headers["Content-Security-Policy"] = (
            THIRD_PARTY_PAGES_POLICY if third_party else CONTENT_SECURITY_POLICY
        )
    response.headers.setdefault("X-Frame-Options", "DENY")
    for name, value in COMMON_HEADERS.items():
        response.headers.setdefault(name, value)
    is_static = request.endpoint is not None and (request.endpoint == "static" or request.endpoint.endswith(".static"))
    if not is_static:
        # Pages for a logged-in person hold their data: no browser or proxy may keep them.
        # Public pages hold CSRF tokens and token links: not kept either.
        if current_user.is_authenticated or "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
            response.headers.pop("Expires", None)
    return response


def mail_preview_response(html: str | None) -> Response:
    """An e-mail's HTML as its own document, for an <iframe sandbox> of this site."""
    response = Response(html or "", mimetype="text/html")
    response.headers["Content-Security-Policy"] = MAIL_PREVIEW_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response

"""The RQ dashboard (rq-dashboard) at /rq, for admins only, on the app's own Redis."""
from flask import Flask, abort, redirect, request, url_for
from flask_wtf.csrf import generate_csrf
from rq_dashboard.web import blueprint, setup_rq_connection

from mailer.permissions import admin_permission

URL_PREFIX = "/rq"
# The dashboard's own script sends this cookie back as the X-CSRFToken header of its POSTs
# (delete, requeue, empty), which Flask-WTF checks like any form's token.
CSRF_COOKIE = "_csrf_token"


def init_rq_dashboard(app: Flask) -> None:
    # The app's Redis, never rq-dashboard's default of localhost.
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    # Builds the client object only; Redis is first contacted when an admin opens a page.
    setup_rq_connection(app)
    app.register_blueprint(blueprint, url_prefix=URL_PREFIX)
    # Without this rule, /rq would redirect everyone to /rq/ and so reveal the dashboard.
    app.add_url_rule(URL_PREFIX, endpoint="rq_dashboard_entry", view_func=dashboard_entry)

    # App-level hooks run before the blueprint's own (which picks the Redis instance from
    # the URL), so nobody but an admin reaches any of its code, static files included.
    @app.before_request
    def only_admins_see_the_dashboard():
        if request.blueprint != blueprint.name:
            return None
        if not admin_permission.can():
            abort(404)
        instance = (request.view_args or {}).get("instance_number")
        if instance is not None and instance >= len(app.config["RQ_DASHBOARD_REDIS_URL"]):
            abort(404)
        return None

    @app.after_request
    def give_the_dashboard_its_csrf_token(response):
        if request.blueprint == blueprint.name and response.mimetype == "text/html":
            response.set_cookie(
                CSRF_COOKIE,
                generate_csrf(),
                path=URL_PREFIX,
                secure=app.config["SESSION_COOKIE_SECURE"],
                httponly=False,
                samesite="Strict",
            )
        return response


def dashboard_entry():
    if not admin_permission.can():
        abort(404)
    return redirect(url_for("rq_dashboard.queues_overview"))

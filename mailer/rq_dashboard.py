"""The RQ dashboard (rq-dashboard) at /rq, for admins only, on the app's own Redis."""

from flask import Flask, abort, current_app, redirect, request, url_for
from flask_wtf.csrf import generate_csrf
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq_dashboard.web import blueprint, setup_rq_connection

from mailer.errors import render_error
from mailer.extensions import rq
from mailer.permissions import is_admin
from mailer.urls import positive_int

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

    # First of the app's hooks, so a non-admin learns nothing, not even from a CSRF error on
    # one of its POST addresses; app hooks also run before the blueprint's own (which picks
    # the Redis instance from the URL), so nobody but an admin reaches any of its code.
    app.before_request_funcs.setdefault(None, []).insert(0, only_admins_see_the_dashboard)
    # A job id that is not (or no longer) in Redis is a page that does not exist.
    app.register_error_handler(NoSuchJobError, unknown_job)

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


def only_admins_see_the_dashboard():
    if request.blueprint != blueprint.name:
        return None
    if not is_admin():
        abort(404)
    arguments = request.view_args or {}
    instance = arguments.get("instance_number")
    if instance is not None and instance >= len(current_app.config["RQ_DASHBOARD_REDIS_URL"]):
        abort(404)
    # The dashboard divides by per_page and converts these itself: anything but a page number
    # names no page.
    for name in ("per_page", "page"):
        if name in arguments:
            try:
                positive_int(str(arguments[name]))
            except ValueError:
                abort(404)
    # Compacting a queue that does not exist is an error in Redis: unknown queues are no page.
    queue_name = arguments.get("queue_name")
    if queue_name is not None and not rq.connection.sismember(
        Queue.redis_queues_keys, Queue.redis_queue_namespace_prefix + queue_name
    ):
        abort(404)
    # "Requeue all" also answers GET, which changes state without the CSRF token: POST only.
    if request.endpoint == f"{blueprint.name}.requeue_all" and request.method != "POST":
        abort(405)
    return None


def unknown_job(error):
    return render_error(404)


def dashboard_entry():
    if not is_admin():
        abort(404)
    return redirect(url_for("rq_dashboard.queues_overview"))

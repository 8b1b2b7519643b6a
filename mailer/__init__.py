"""Mailer: a self-hosted service that manages e-mail mailings."""

import os

from flask import Flask

from config import CONFIGS, ProductionConfig, env_bool


def create_app(config: str | type | None = None, **overrides) -> Flask:
    """Build the app as a list of named steps; nothing here touches the network or the disk."""
    config_class = resolve_config(config)
    app = Flask(__name__, instance_path=config_class.INSTANCE_DIR)
    app.config.from_object(config_class)
    app.config.update(overrides)
    # The rate limits and the statistics cache live in the same Redis as the queue.
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("CACHE_REDIS_URL", app.config["REDIS_URL"])
    if config_class is ProductionConfig or issubclass(config_class, ProductionConfig):
        ProductionConfig.check(app.config.get("SECRET_KEY"))

    register_url_converters(app)
    register_extensions(app)
    register_blueprints(app)
    register_rq_dashboard(app)
    register_admin(app)
    register_errorhandlers(app)
    register_template_helpers(app)
    register_cli(app)
    register_security(app)
    return app


def resolve_config(config: str | type | None) -> type:
    """The configuration class to use: the one asked for, else MAILER_CONFIG, else production.

    Development (a public secret key, the debugger) is only ever chosen on purpose: by
    MAILER_CONFIG=development, which `make dev` sets, or by `flask run --debug` (FLASK_DEBUG=1).
    A server started with no settings at all is production, which refuses to run without a
    real SECRET_KEY.
    """
    if isinstance(config, type):
        return config
    name = config or os.environ.get("MAILER_CONFIG") or os.environ.get("FLASK_CONFIG")
    if not name:
        name = "development" if env_bool("FLASK_DEBUG") else "production"
    try:
        return CONFIGS[name]
    except KeyError:
        raise RuntimeError(f"Unknown configuration {name!r}; choose one of {', '.join(CONFIGS)}.") from None


def register_url_converters(app: Flask) -> None:
    from mailer.urls import init_url_converters

    init_url_converters(app)


def register_extensions(app: Flask) -> None:
    from mailer import (
        database,  # noqa: F401  (installs the SQLite connection settings)
        models,  # noqa: F401  (registers every model)
    )
    from mailer.auth.session import init_login
    from mailer.extensions import bootstrap, cache, csrf, db, limiter, mail, migrate, principal, rq
    from mailer.i18n import init_i18n
    from mailer.permissions import init_principal

    init_i18n(app)
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True)
    csrf.init_app(app)
    init_login(app)
    principal.init_app(app)
    init_principal(app)
    cache.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    bootstrap.init_app(app)
    rq.init_app(app)


def register_blueprints(app: Flask) -> None:
    from mailer import auth, clients, mailings, main, messages, reports, runs, senders, unsubscribe, users

    # Deny by default: every blueprint but main, auth and unsubscribe requires login in its
    # own package (bp.before_request(require_login)).
    app.register_blueprint(main.bp)
    app.register_blueprint(auth.bp, url_prefix="/auth")
    app.register_blueprint(unsubscribe.bp, url_prefix="/unsubscribe")
    for blueprint, prefix in [
        (clients.bp, "/clients"),
        (messages.bp, "/messages"),
        (mailings.bp, "/mailings"),
        (senders.bp, "/senders"),
        (runs.bp, "/runs"),
        (reports.bp, "/reports"),
        (users.bp, "/users"),
    ]:
        app.register_blueprint(blueprint, url_prefix=prefix)


def register_rq_dashboard(app: Flask) -> None:
    from mailer.rq_dashboard import init_rq_dashboard

    init_rq_dashboard(app)


def register_admin(app: Flask) -> None:
    from mailer.admin import register_admin as init_admin_panel

    init_admin_panel(app)


def register_errorhandlers(app: Flask) -> None:
    from mailer.errors import init_errors

    init_errors(app)


def register_template_helpers(app: Flask) -> None:
    from mailer.templating import init_templating

    init_templating(app)


def register_security(app: Flask) -> None:
    from mailer.security import init_security

    init_security(app)


def register_cli(app: Flask) -> None:
    from mailer.cli import init_cli

    init_cli(app)

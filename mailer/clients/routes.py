from mailer.clients import bp  # noqa: F401

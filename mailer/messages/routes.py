from mailer.messages import bp  # noqa: F401

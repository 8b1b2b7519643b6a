from mailer.unsubscribe import bp  # noqa: F401

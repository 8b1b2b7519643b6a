from mailer.reports import bp  # noqa: F401

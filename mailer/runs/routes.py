from mailer.runs import bp  # noqa: F401

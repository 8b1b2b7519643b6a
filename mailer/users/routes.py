from mailer.users import bp  # noqa: F401

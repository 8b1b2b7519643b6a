from mailer.mailings import bp  # noqa: F401

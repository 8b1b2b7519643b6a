"""Sending the app's own e-mails (confirmation, password reset, ...) from the worker."""

from flask import current_app
from flask_mail import Message as MailMessage

from mailer.services.transport import MailConnection


def send_with_timeout(message: MailMessage) -> None:
    """Send through a connection with MAIL_TIMEOUT, so a silent server cannot hang the worker."""
    with MailConnection(current_app.extensions["mail"]) as connection:
        message.send(connection)


def send_email(to: str, subject: str, text: str, html: str | None = None) -> None:
    """Send one already-rendered e-mail; RQ retries it if the SMTP server is unreachable."""
    message = MailMessage(
        subject=subject,
        recipients=[to],
        body=text,
        html=html,
        sender=current_app.config["MAIL_DEFAULT_SENDER"],
    )
    send_with_timeout(message)

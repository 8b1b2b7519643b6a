"""Sending a test of a message to its author."""

import secrets

from flask import current_app
from flask_babel import gettext

from mailer.extensions import db
from mailer.i18n import in_language_of
from mailer.jobs.email import send_with_timeout
from mailer.models import Client, Message
from mailer.services import rendering


def send_test_message(message_id: int, to: str, sample_name: str, sample_email: str) -> bool:
    """Render the message for a sample recipient and send it to `to`.

    Returns False when the message was deleted before the worker got to it. The sample client
    is never saved: it has no id, so the unsubscribe link of a test unsubscribes nobody.
    """
    message = db.session.get(Message, message_id)
    if message is None:
        return False
    sample = Client(owner_id=message.owner_id, email=sample_email, full_name=sample_name)
    domain = current_app.config["MAIL_MESSAGE_ID_DOMAIN"]
    email = rendering.build_mail(message, sample, message_id=f"<test.{message.id}.{secrets.token_hex(8)}@{domain}>")
    email.recipients = [to]
    with in_language_of(message.owner):
        email.subject = gettext("[Test] %(subject)s", subject=email.subject)
    send_with_timeout(email)
    return True

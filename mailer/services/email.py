"""Rendering the app's own e-mails and handing them to the worker."""

import logging
from contextlib import nullcontext

from flask import render_template
from flask_babel import force_locale
from redis.exceptions import RedisError
from rq import Retry

from mailer.extensions import rq

log = logging.getLogger(__name__)


def queue_email(to: str, subject: str, template: str, language: str | None = None, **context) -> bool:
    """Render `email/<template>.txt` and `.html` and enqueue their sending.

    The subject (a lazy string) and the body are written in `language`, else in the request's.
    Returns False when the queue is unreachable, so the caller can tell the person that the
    e-mail could not be sent now; nothing else is undone.
    """
    with force_locale(language) if language else nullcontext():
        subject = str(subject)
        text = render_template(f"email/{template}.txt", **context)
        html = render_template(f"email/{template}.html", **context)
    try:
        rq.queue.enqueue(
            "mailer.jobs.email.send_email",
            to,
            subject,
            text,
            html,
            retry=Retry(max=3, interval=[10, 60, 300]),
            description=f"e-mail {template!r}",
        )
    except RedisError:
        log.exception("could not enqueue the %s e-mail", template)
        return False
    return True

"""Messages: validation, HTML sanitising, listing, changes, test sends. No request objects here."""
import logging
from dataclasses import dataclass

from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from mailer.extensions import db, rq
from mailer.listing import sorted_rows, visible_rows
from mailer.models import Mailing, Message, User
from mailer.services.clients import first_client
from mailer.services.html import sanitize_html
from mailer.services.rendering import check_template

log = logging.getLogger(__name__)

SUBJECT_MAX_LENGTH = 255
# Far above any real e-mail, far below what would slow the pages and the sending down.
BODY_MAX_CHARS = 200_000

SORT_COLUMNS = {"subject": Message.subject, "created": Message.created_at, "updated": Message.updated_at}
DEFAULT_SORT = "-updated"

class MessageError(ValueError):
    """A change that cannot be made; `field` names the form field the message belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class MessageInUse(MessageError):
    """The message is the content of mailings, which must be changed or deleted first."""

    def __init__(self, mailings: list[Mailing]):
        names = ", ".join(mailing.name for mailing in mailings)
        super().__init__(f"This message is used by {len(mailings)} mailing{'s' if len(mailings) != 1 else ''} "
                         f"({names}). Give those mailings another message, or delete them, first.")
        self.mailings = mailings


def subject_problem(subject: str) -> str | None:
    if "\r" in subject or "\n" in subject:
        return "The subject must be on one line."
    if len(subject) > SUBJECT_MAX_LENGTH:
        return f"The subject has at most {SUBJECT_MAX_LENGTH} characters."
    return None


def body_problem(body: str, label: str) -> str | None:
    if len(body) > BODY_MAX_CHARS:
        return f"The {label} is too long: at most {BODY_MAX_CHARS:,} characters (it has {len(body):,})."
    return None


# Queries --------------------------------------------------------------------------------------

def list_query(viewer: User, *, search: str = "", sort: str = DEFAULT_SORT, owner_id: int | None = None,
               view_all: bool = False) -> Select:
    """The messages `viewer` sees: their own, or everyone's (optionally one owner's) when
    `view_all` (managers and admins)."""
    query = visible_rows(Message, viewer, owner_id=owner_id, view_all=view_all)
    search = (search or "").strip()
    if search:
        query = query.where(Message.subject.icontains(search, autoescape=True))
    return sorted_rows(query, Message, SORT_COLUMNS, sort, DEFAULT_SORT)


def mailings_using(message: Message) -> list[Mailing]:
    return list(db.session.scalars(
        select(Mailing).where(Mailing.message_id == message.id).order_by(Mailing.name, Mailing.id)))


# Changes --------------------------------------------------------------------------------------

def _clean_fields(subject: str, body_text: str, body_html: str | None) -> tuple[str, str, str | None]:
    subject = (subject or "").strip()
    if not subject:
        raise MessageError("Enter a subject.", "subject")
    problem = subject_problem(subject) or check_template(subject)
    if problem:
        raise MessageError(problem, "subject")
    if not (body_text or "").strip():
        raise MessageError("Enter the text of the message.", "body_text")
    problem = body_problem(body_text, "text") or check_template(body_text)
    if problem:
        raise MessageError(problem, "body_text")
    if body_html:
        problem = body_problem(body_html, "HTML")
        if problem:
            raise MessageError(problem, "body_html")
    body_html = sanitize_html(body_html)
    # Cleaning re-serialises the HTML; what is stored must still be a valid template.
    problem = check_template(body_html) if body_html else None
    if problem:
        raise MessageError(problem, "body_html")
    return subject, body_text, body_html


def create_message(owner: User, subject: str, body_text: str, body_html: str | None = None) -> Message:
    subject, body_text, body_html = _clean_fields(subject, body_text, body_html)
    message = Message(owner_id=owner.id, subject=subject, body_text=body_text, body_html=body_html)
    db.session.add(message)
    db.session.flush()
    return message


def update_message(message: Message, subject: str, body_text: str, body_html: str | None = None) -> Message:
    message.subject, message.body_text, message.body_html = _clean_fields(subject, body_text, body_html)
    db.session.flush()
    return message


def delete_message(message: Message) -> None:
    """Delete a message no mailing uses; raises MessageInUse otherwise (the foreign key of
    mailings is RESTRICT, so a mailing created meanwhile is caught by the database)."""
    mailings = mailings_using(message)
    if mailings:
        raise MessageInUse(mailings)
    try:
        with db.session.begin_nested():
            db.session.delete(message)
    except IntegrityError:
        raise MessageInUse(mailings_using(message)) from None


# Test send ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QueuedTestSend:
    recipient: str
    sample_name: str
    sample_email: str


def queue_test_send(message: Message, recipient: User) -> QueuedTestSend:
    """Have the worker send `message` to `recipient`'s own address, rendered for a sample: the
    message owner's first subscribed client, or the recipient themself if there is none.

    The sample is only a name and an address: the test's unsubscribe link is bound to no client,
    so trying it cannot unsubscribe a real one. Raises MessageError if the queue is unreachable.
    """
    sample = first_client(message.owner_id)
    if sample is not None:
        test = QueuedTestSend(recipient.email, sample.full_name, sample.email)
    else:
        test = QueuedTestSend(recipient.email, recipient.full_name or recipient.email, recipient.email)
    try:
        rq.queue.enqueue("mailer.jobs.test_send.send_test_message", message.id, test.recipient,
                         test.sample_name, test.sample_email, retry=Retry(max=3, interval=[10, 60, 300]),
                         description=f"test of message {message.id}")
    except RedisError:
        log.exception("could not enqueue the test send of message %s", message.id)
        raise MessageError("The test could not be sent right now. Please try again in a few minutes.") from None
    return test

"""Messages: validation, HTML sanitising, listing, changes, test sends. No request objects here."""

import logging
from dataclasses import dataclass

from flask_babel import gettext as _
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mailer.extensions import db, rq
from mailer.i18n import user_language
from mailer.models import Client, Mailing, Message, User
from mailer.services import paging, rendering
from mailer.services.clients import ClientError, clean_email, first_client
from mailer.services.errors import FieldError
from mailer.services.html import sanitize_html
from mailer.services.message_templates import SAMPLE_VALUES, TemplateProblem, check_template

log = logging.getLogger(__name__)

SUBJECT_MAX_LENGTH = 255
# Far above any real e-mail, far below what would slow the pages and the sending down.
BODY_MAX_CHARS = 200_000

SORT_COLUMNS = {"subject": Message.subject, "created": Message.created_at, "updated": Message.updated_at}
DEFAULT_SORT = "-updated"


class MessageError(FieldError):
    """A change to a message that cannot be made."""


class MessageInUse(MessageError):
    """The message is the content of mailings, which must be changed or deleted first."""

    def __init__(self, mailings: list[Mailing]):
        names = ", ".join(mailing.name for mailing in mailings)
        super().__init__(
            f"This message is used by {len(mailings)} mailing{'s' if len(mailings) != 1 else ''} "
            f"({names}). Give those mailings another message, or delete them, first."
        )
        self.mailings = mailings


def subject_problem(subject: str) -> str | None:
    if "\r" in subject or "\n" in subject:
        return _("The subject must be on one line.")
    if len(subject) > SUBJECT_MAX_LENGTH:
        return _("The subject has at most %(limit)s characters.", limit=SUBJECT_MAX_LENGTH)
    return None


def body_problem(body: str, label: str) -> str | None:
    """Why a body (`label`: "text" or "HTML") is refused for its length, or None."""
    if len(body) <= BODY_MAX_CHARS:
        return None
    numbers = {"limit": f"{BODY_MAX_CHARS:,}", "length": f"{len(body):,}"}
    if label == "HTML":
        return _("The HTML is too long: at most %(limit)s characters (it has %(length)s).", **numbers)
    return _("The text is too long: at most %(limit)s characters (it has %(length)s).", **numbers)


# Queries --------------------------------------------------------------------------------------


def list_page(
    viewer: User,
    *,
    search: str = "",
    sort: str = DEFAULT_SORT,
    owner_id: int | None = None,
    view_all: bool = False,
    after: tuple | None = None,
    before: tuple | None = None,
    per_page: int = paging.PER_PAGE,
) -> paging.Page:
    """A page of the messages `viewer` sees: their own, or everyone's (optionally one owner's)
    when `view_all` (managers and admins)."""
    query = paging.visible_rows(Message, viewer, owner_id=owner_id, view_all=view_all)
    search = (search or "").strip()
    if search:
        query = query.where(Message.subject.icontains(search, autoescape=True))
    keys = paging.sort_keys(SORT_COLUMNS, sort, DEFAULT_SORT, Message.id)
    return paging.keyset_page(query, keys, per_page, after=after, before=before)


def mailings_using(message: Message) -> list[Mailing]:
    return list(
        db.session.scalars(select(Mailing).where(Mailing.message_id == message.id).order_by(Mailing.name, Mailing.id))
    )


# Changes --------------------------------------------------------------------------------------


def _clean_fields(subject: str, body_text: str, body_html: str | None) -> tuple[str, str, str | None]:
    subject = (subject or "").strip()
    if not subject:
        raise MessageError(_("Enter a subject."), "subject")
    problem = subject_problem(subject) or check_template(subject)
    if problem:
        raise MessageError(problem, "subject")
    if not (body_text or "").strip():
        raise MessageError(_("Enter the text of the message."), "body_text")
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


def queue_test_send(message: Message, recipient: User, to: str = "") -> QueuedTestSend:
    """Have the worker send `message` to `to` (an address checked like a client's), or to
    `recipient`'s own address, rendered for a sample: the message owner's first subscribed
    client, or the recipient themself if there is none.

    The sample is only a name and an address: the test's unsubscribe link is bound to no client,
    so trying it cannot unsubscribe a real one. Raises MessageError if the queue is unreachable.
    """
    address = recipient.email
    if to and to.strip():
        try:
            address = clean_email(to)
        except ClientError as error:
            raise MessageError(
                _("The test cannot be sent to “%(address)s”: %(error)s", address=to.strip(), error=error)
            ) from None
    sample = first_client(message.owner_id)
    if sample is not None:
        test = QueuedTestSend(address, sample.full_name, sample.email)
    else:
        test = QueuedTestSend(address, recipient.full_name or recipient.email, recipient.email)
    try:
        rq.queue.enqueue(
            "mailer.jobs.test_send.send_test_message",
            message.id,
            test.recipient,
            test.sample_name,
            test.sample_email,
            retry=Retry(max=3, interval=[10, 60, 300]),
            description=f"test of message {message.id}",
        )
    except RedisError:
        log.exception("could not enqueue the test send of message %s", message.id)
        raise MessageError(_("The test could not be sent right now. Please try again in a few minutes.")) from None
    return test


# Preview --------------------------------------------------------------------------------------

# The recipient of a preview when the owner has no client yet.
SAMPLE_NAME, SAMPLE_EMAIL = SAMPLE_VALUES["name"], SAMPLE_VALUES["email"]
# The clients offered in the preview's "for" list; any other can still be chosen by id.
PREVIEW_CLIENT_CHOICES = 200


@dataclass(frozen=True)
class Preview:
    """A message as one client receives it: the headers, the text and the HTML, footers included."""

    client_id: int | None  # None: a sample recipient, not one of the owner's clients
    headers: list[tuple[str, str]]
    text: str
    html: str | None
    problem: str | None = None  # set instead of the rest when the content cannot be rendered


def preview_client_choices(owner_id: int) -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(Client.id, Client.full_name, Client.email)
        .where(Client.owner_id == owner_id, Client.unsubscribed_at.is_(None))
        .order_by(Client.full_name, Client.email)
        .limit(PREVIEW_CLIENT_CHOICES)
    )
    return [(row.id, f"{row.full_name} <{row.email}>" if row.full_name else row.email) for row in rows]


def preview(
    owner_id: int, subject: str, body_text: str, body_html: str | None, client_id: int | None = None
) -> Preview:
    """Render unsaved (or saved) content exactly as the sending engine will, for one of the
    owner's clients, or their first subscribed client, or a sample person.

    The recipient is a copy that is never saved: its unsubscribe link has the real form but
    names no client, so following it from the preview unsubscribes nobody.
    """
    chosen = None
    if client_id:
        chosen = db.session.scalar(select(Client).where(Client.id == client_id, Client.owner_id == owner_id))
    chosen = chosen or first_client(owner_id)
    if chosen is not None:
        recipient = Client(owner_id=owner_id, email=chosen.email, full_name=chosen.full_name)
    else:
        recipient = Client(owner_id=owner_id, email=SAMPLE_EMAIL, full_name=SAMPLE_NAME)
    chosen_id = chosen.id if chosen is not None else None
    try:
        subject, body_text, body_html = _clean_fields(subject, body_text, body_html)
        owner = db.session.get(User, owner_id)
        renderer = rendering.MailRenderer(subject, body_text, body_html, user_language(owner))
        mail = renderer.build(recipient, message_id="<preview@localhost>")
    except (MessageError, TemplateProblem) as error:
        return Preview(chosen_id, [], "", None, problem=str(error))
    name, address = mail.recipients[0]
    headers = [
        ("From", mail.sender),
        ("To", f"{name} <{address}>" if name else address),
        ("Subject", mail.subject),
        *mail.extra_headers.items(),
    ]
    return Preview(chosen_id, headers, mail.body, mail.html)

"""Clients (recipients): validation, listing, changes, CSV export. No request objects here."""

from collections.abc import Iterator

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from mailer.extensions import db
from mailer.i18n import current_language
from mailer.i18n import lazy_text as _l
from mailer.models import Client, Mailing, User, mailing_clients
from mailer.services import paging
from mailer.services.errors import FieldError
from mailer.services.spreadsheets import CsvChunks, csv_safe
from mailer.services.stats import clear_stats_cache_after_commit

EMAIL_MAX_LENGTH = 254
FULL_NAME_MAX_LENGTH = 120
COMMENT_MAX_LENGTH = 2000

DUPLICATE_EMAIL = _l("You already have a client with this e-mail address.")

# ?sort= values of the list page; a leading "-" sorts in descending order.
SORT_COLUMNS = {"name": Client.full_name, "email": Client.email, "created": Client.created_at}
DEFAULT_SORT = "name"


class ClientError(FieldError):
    """A change to a client that cannot be made."""


# email-validator explains in English; the explanations people meet most are translated here,
# and in another language any other one becomes a plain "not a valid address".
VALIDATOR_MESSAGES = [
    _l("An email address must have an @-sign."),
    _l("There must be something before the @-sign."),
    _l("There must be something after the @-sign."),
    _l("An email address cannot have two periods in a row."),
    _l("An email address cannot have a period and a hyphen next to each other."),
    _l("The email address contains invalid characters before the @-sign."),
    _l("The email address contains an invalid character."),
    _l("The part after the @-sign is not valid. It should have a period."),
    _l("The part after the @-sign is not valid. It is not within a valid top-level domain."),
    _l("The part after the @-sign is a special-use or reserved name that cannot be used with email."),
    _l("There can't be anything after the email address."),
    _l("Internationalized characters before the @-sign are not supported."),
]


def validator_message(error: Exception) -> str:
    """email-validator's explanation in the reader's language (see VALIDATOR_MESSAGES)."""
    text = str(error)
    translated = gettext(text)
    if translated != text or current_language() == "en":
        return translated
    return gettext("This is not a valid e-mail address.")


def clean_email(value: str) -> str:
    """The address as it is stored: checked by email-validator (no DNS lookup), lower-cased.

    Raises ClientError with the validator's explanation when the address is not valid.
    """
    value = (value or "").strip()
    if not value:
        raise ClientError(_("Enter an e-mail address."), "email")
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise ClientError(validator_message(error), "email") from None
    normalized = checked.normalized.lower()
    if len(normalized) > EMAIL_MAX_LENGTH:
        raise ClientError(_("An e-mail address has at most %(limit)s characters.", limit=EMAIL_MAX_LENGTH), "email")
    return normalized


def clean_full_name(value: str | None) -> str:
    full_name = (value or "").strip()
    if not full_name:
        raise ClientError(_("Enter the client's full name."), "full_name")
    if len(full_name) > FULL_NAME_MAX_LENGTH:
        raise ClientError(_("A full name has at most %(limit)s characters.", limit=FULL_NAME_MAX_LENGTH), "full_name")
    return full_name


def clean_comment(value: str | None) -> str:
    comment = (value or "").strip()
    if len(comment) > COMMENT_MAX_LENGTH:
        raise ClientError(_("A comment has at most %(limit)s characters.", limit=COMMENT_MAX_LENGTH), "comment")
    return comment


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
    """A page of the clients `viewer` sees: their own, or everyone's (optionally one owner's)
    when `view_all` (managers and admins); `search` is a part of the address or the name."""
    query = paging.visible_rows(Client, viewer, owner_id=owner_id, view_all=view_all)
    search = (search or "").strip()
    if search:
        query = query.where(
            Client.email.icontains(search, autoescape=True) | Client.full_name.icontains(search, autoescape=True)
        )
    keys = paging.sort_keys(SORT_COLUMNS, sort, DEFAULT_SORT, Client.id)
    return paging.keyset_page(query, keys, per_page, after=after, before=before)


def all_owners() -> list[User]:
    """Every user, for the owner filter of managers and admins."""
    return list(db.session.scalars(select(User).order_by(User.email)))


def find_by_email(owner_id: int, email: str) -> Client | None:
    # No autoflush: a pending change to the client being saved is flushed by `_save`, where a
    # duplicate becomes a field error.
    with db.session.no_autoflush:
        return db.session.scalar(select(Client).where(Client.owner_id == owner_id, Client.email == email))


def first_client(owner_id: int) -> Client | None:
    """The owner's oldest subscribed client, used as the sample recipient of a test send."""
    return db.session.scalar(
        select(Client).where(Client.owner_id == owner_id, Client.unsubscribed_at.is_(None)).order_by(Client.id).limit(1)
    )


def mailings_using(client: Client) -> list[Mailing]:
    return list(
        db.session.scalars(
            select(Mailing)
            .join(mailing_clients, mailing_clients.c.mailing_id == Mailing.id)
            .where(mailing_clients.c.client_id == client.id)
            .order_by(Mailing.name, Mailing.id)
        )
    )


# Changes --------------------------------------------------------------------------------------


def _clean_fields(email: str, full_name: str, comment: str | None) -> tuple[str, str, str]:
    return clean_email(email), clean_full_name(full_name), clean_comment(comment)


def _save(client: Client, **values) -> None:
    """Apply the values and flush them in a savepoint, so that a concurrent insert of the same
    address becomes a field error instead of a failed transaction."""
    try:
        with db.session.begin_nested():
            for name, value in values.items():
                setattr(client, name, value)
            db.session.add(client)
    except IntegrityError:
        raise ClientError(str(DUPLICATE_EMAIL), "email") from None


def create_client(owner: User, email: str, full_name: str, comment: str | None = "") -> Client:
    email, full_name, comment = _clean_fields(email, full_name, comment)
    if find_by_email(owner.id, email) is not None:
        raise ClientError(str(DUPLICATE_EMAIL), "email")
    client = Client(owner_id=owner.id)
    _save(client, email=email, full_name=full_name, comment=comment)
    clear_stats_cache_after_commit(owner.id)
    return client


def update_client(client: Client, email: str, full_name: str, comment: str | None = "") -> Client:
    email, full_name, comment = _clean_fields(email, full_name, comment)
    if email != client.email:
        other = find_by_email(client.owner_id, email)
        if other is not None and other.id != client.id:
            raise ClientError(str(DUPLICATE_EMAIL), "email")
    _save(client, email=email, full_name=full_name, comment=comment)
    clear_stats_cache_after_commit(client.owner_id)
    return client


def delete_client(client: Client) -> None:
    """Delete a client. The database removes it from its mailings (ON DELETE CASCADE on
    mailing_clients); past deliveries and attempts keep the address."""
    owner_id = client.owner_id
    leave_mailings(client)
    db.session.delete(client)
    db.session.flush()
    clear_stats_cache_after_commit(owner_id)


def leave_mailings(client: Client) -> None:
    """Count the client out of its mailings' `client_count`, before it is deleted (the
    database then removes its rows of mailing_clients)."""
    db.session.execute(
        update(Mailing)
        .where(Mailing.id.in_(select(mailing_clients.c.mailing_id).where(mailing_clients.c.client_id == client.id)))
        .values(client_count=Mailing.client_count - 1)
        .execution_options(synchronize_session=False)
    )


# Export ---------------------------------------------------------------------------------------

EXPORT_HEADER = ["email", "full_name", "comment", "unsubscribed_at", "created_at"]
EXPORT_BATCH = 1000


def export_csv(owner_id: int) -> Iterator[str]:
    """The owner's clients as CSV text, produced in batches so that a large list is streamed
    without being held in memory."""
    writer = CsvChunks()
    writer.writerow(EXPORT_HEADER)
    yield writer.take()
    last_id = 0
    while True:
        batch = db.session.execute(
            select(Client.id, Client.email, Client.full_name, Client.comment, Client.unsubscribed_at, Client.created_at)
            .where(Client.owner_id == owner_id, Client.id > last_id)
            .order_by(Client.id)
            .limit(EXPORT_BATCH)
        ).all()
        if not batch:
            return
        for row in batch:
            writer.writerow(
                [
                    csv_safe(row.email),
                    csv_safe(row.full_name or ""),
                    csv_safe(row.comment or ""),
                    row.unsubscribed_at.isoformat() if row.unsubscribed_at else "",
                    row.created_at.isoformat() if row.created_at else "",
                ]
            )
        last_id = batch[-1].id
        yield writer.take()

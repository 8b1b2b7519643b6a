"""Sender identities: the From addresses an owner may send as, each confirmed through a link
sent to it, and the From / Reply-To headers of a mailing. No request objects here."""

from dataclasses import dataclass
from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from mailer.extensions import db
from mailer.i18n import language_for
from mailer.i18n import lazy_text as _l
from mailer.models import Mailing, SenderIdentity, User, utcnow
from mailer.services import tokens
from mailer.services.accounts import external_url
from mailer.services.addresses import envelope_address, header_address
from mailer.services.clients import validator_message
from mailer.services.email import queue_email
from mailer.services.errors import FieldError

NAME_MAX_LENGTH = 120
EMAIL_MAX_LENGTH = 254
INVALID_LINK = _l("This confirmation link is invalid or has expired. Send a new one from your sender addresses.")


class IdentityError(FieldError):
    """A change to a sender address that cannot be made."""


@dataclass(frozen=True)
class SenderHeaders:
    """How a mailing's messages name their sender."""

    from_header: str  # the From: value, ready for the header (see addresses.header_address)
    reply_to: str | None  # the Reply-To: value, or None
    envelope_from: str  # the MAIL FROM address, domain in IDNA
    display: str  # for people: "Alice <alice@пример.рф>"


def normalize_address(value: str | None, field: str = "email") -> str:
    """An address checked by email-validator (no DNS lookup), lower-cased.

    International domains are welcome (they travel in IDNA); a local part with other than ASCII
    characters is refused, since mail from it could only leave through servers that offer
    SMTPUTF8, and confirmation and replies would fail elsewhere.
    """
    value = (value or "").strip()
    if not value:
        raise IdentityError(_("Enter an e-mail address."), field)
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise IdentityError(validator_message(error), field) from None
    if not checked.local_part.isascii():
        raise IdentityError(
            _(
                "A sender address must have only Latin letters, digits and punctuation before the "
                "@ (the domain may be international, e.g. info@пример.рф)."
            ),
            field,
        )
    normalized = checked.normalized.lower()
    if len(normalized) > EMAIL_MAX_LENGTH:
        raise IdentityError(_("An e-mail address has at most %(limit)s characters.", limit=EMAIL_MAX_LENGTH), field)
    return normalized


def clean_name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if len(name) > NAME_MAX_LENGTH:
        raise IdentityError(_("A name has at most %(limit)s characters.", limit=NAME_MAX_LENGTH), "name")
    return name


# Owner's identities -----------------------------------------------------------------------------


def identities_of(owner_id: int) -> list[SenderIdentity]:
    return list(
        db.session.scalars(
            select(SenderIdentity)
            .where(SenderIdentity.owner_id == owner_id)
            .order_by(SenderIdentity.email, SenderIdentity.id)
        )
    )


def confirmed_identities(owner_id: int) -> list[SenderIdentity]:
    return list(
        db.session.scalars(
            select(SenderIdentity)
            .where(SenderIdentity.owner_id == owner_id, SenderIdentity.confirmed_at.is_not(None))
            .order_by(SenderIdentity.confirmed_at, SenderIdentity.id)
        )
    )


def first_confirmed(owner_id: int) -> SenderIdentity | None:
    identities = confirmed_identities(owner_id)
    return identities[0] if identities else None


def mailings_using(identity: SenderIdentity) -> list[Mailing]:
    """The mailings sent from this address, by name."""
    return list(
        db.session.scalars(select(Mailing).where(Mailing.sender_identity_id == identity.id).order_by(Mailing.name))
    )


def add_identity(owner: User, name: str, email: str, reply_to: str | None) -> SenderIdentity:
    """A new, unconfirmed identity; call `send_confirmation` after the commit."""
    email = normalize_address(email)
    name = clean_name(name)
    reply_to = normalize_address(reply_to, "reply_to") if (reply_to or "").strip() else None
    exists = db.session.scalar(
        select(SenderIdentity.id).where(SenderIdentity.owner_id == owner.id, SenderIdentity.email == email)
    )
    if exists is not None:
        raise IdentityError(_("You already have this sender address."), "email")
    identity = SenderIdentity(owner_id=owner.id, name=name, email=email, reply_to=reply_to)
    db.session.add(identity)
    db.session.flush()
    return identity


def update_identity(identity: SenderIdentity, name: str, reply_to: str | None) -> None:
    """The name and Reply-To may change; the address itself is what was confirmed, so it cannot."""
    identity.name = clean_name(name)
    identity.reply_to = normalize_address(reply_to, "reply_to") if (reply_to or "").strip() else None


def delete_identity(identity: SenderIdentity) -> None:
    # Mailings that named it fall back to the owner's first confirmed identity (ON DELETE SET NULL).
    db.session.delete(identity)


def send_confirmation(identity: SenderIdentity) -> bool:
    """Queue the e-mail with the confirmation link; False when the queue is unreachable."""
    token = tokens.make_token(tokens.SENDER_IDENTITY, {"sid": identity.id, "email": identity.email})
    return queue_email(
        identity.email,
        _l("Confirm your sender address"),
        "confirm_sender",
        language=language_for(identity.owner),
        identity=identity,
        owner=identity.owner,
        confirm_url=external_url("senders.confirm", token=token),
    )


def confirm(token: str, user: User) -> SenderIdentity:
    """Mark the identity of a valid link confirmed. The link works only for its owner, logged in:
    whoever reads the mailbox cannot confirm an address for somebody else's account."""
    data = tokens.read_token(tokens.SENDER_IDENTITY, token, current_app.config["CONFIRM_TOKEN_MAX_AGE"])
    identity = db.session.get(SenderIdentity, data["sid"]) if isinstance(data, dict) and "sid" in data else None
    if identity is None or identity.email != data.get("email") or identity.owner_id != user.id:
        raise IdentityError(str(INVALID_LINK))
    if identity.confirmed_at is None:
        identity.confirmed_at = utcnow()
    return identity


# Mailings ---------------------------------------------------------------------------------------


def check_for_mailing(owner_id: int, identity_id: int | None) -> None:
    """A mailing may name only a confirmed identity of its owner (or none, for the default)."""
    if identity_id is None:
        return
    identity = db.session.get(SenderIdentity, identity_id)
    if identity is None or identity.owner_id != owner_id:
        raise IdentityError(_("Choose one of your own sender addresses."), "sender_identity")
    if not identity.is_confirmed:
        raise IdentityError(
            _(
                "%(email)s is not confirmed yet: follow the link we sent to it, then choose it here.",
                email=identity.email,
            ),
            "sender_identity",
        )


def identity_for_mailing(mailing: Mailing) -> SenderIdentity | None:
    identity = mailing.sender_identity
    if identity is not None and identity.is_confirmed and identity.owner_id == mailing.owner_id:
        return identity
    return first_confirmed(mailing.owner_id)


def sender_for_mailing(mailing: Mailing) -> SenderHeaders:
    """From and Reply-To of a mailing: its confirmed identity, else the owner's first confirmed
    identity, else MAIL_DEFAULT_SENDER."""
    identity = identity_for_mailing(mailing)
    if identity is not None:
        return SenderHeaders(
            from_header=header_address(identity.name, identity.email),
            reply_to=header_address("", identity.reply_to) if identity.reply_to else None,
            envelope_from=envelope_address(identity.email).address,
            display=str(identity) + (f" (Reply-To: {identity.reply_to})" if identity.reply_to else ""),
        )
    name, address = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])
    address = address or current_app.config["MAIL_DEFAULT_SENDER"]
    return SenderHeaders(
        from_header=header_address(name, address),
        reply_to=None,
        envelope_from=envelope_address(address).address,
        display=current_app.config["MAIL_DEFAULT_SENDER"],
    )

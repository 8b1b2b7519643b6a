"""Accounts: registration, confirmation, passwords, profile, roles. No request objects here."""

import io
import secrets
import warnings
from functools import cache
from pathlib import Path

from flask import current_app, url_for
from flask_babel import gettext as _
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from mailer.extensions import db
from mailer.i18n import language_for
from mailer.i18n import lazy_text as _l
from mailer.models import Role, User, utcnow
from mailer.models.user import hash_password
from mailer.services import tokens
from mailer.services.email import queue_email

AVATAR_FORMATS = {"PNG", "JPEG", "GIF", "WEBP"}
AVATAR_SIZE = (256, 256)
# Far above any photo a person would use, far below what would exhaust the web process.
AVATAR_MAX_PIXELS = 4096 * 4096


class AccountError(ValueError):
    """A request about an account that cannot be carried out; the message is for the person."""


def lowercase_email(email: str) -> str:
    """An account's address as it is stored and looked up: trimmed and lower-cased."""
    return email.strip().lower()


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == lowercase_email(email)))


def external_url(endpoint: str, **values) -> str:
    """An absolute link for an e-mail, built on EXTERNAL_URL rather than the request's host."""
    return current_app.config["EXTERNAL_URL"] + url_for(endpoint, **values)


# Registration and confirmation ---------------------------------------------------------------


def register(
    email: str,
    password: str,
    full_name: str = "",
    phone: str = "",
    country: str = "",
    timezone: str = "UTC",
    locale: str | None = None,
) -> User | None:
    """Create an unconfirmed account and e-mail its confirmation link.

    For an address that already has an account nothing is created and the owner of the
    address is told by e-mail instead, so the page answers the same in both cases.
    """
    existing = find_user(email)
    if existing is not None:
        # The password is hashed all the same: both answers take as long.
        hash_password(password)
        queue_email(
            existing.email,
            _l("Someone tried to register with your address"),
            "already_registered",
            language=language_for(existing),
            user=existing,
            login_url=external_url("auth.login"),
            reset_url=external_url("auth.reset_request"),
        )
        return None
    user = User(
        email=lowercase_email(email),
        full_name=full_name.strip(),
        phone=phone.strip(),
        country=country,
        timezone=timezone,
        locale=locale,
    )
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def send_confirmation(user: User) -> bool:
    token = tokens.make_token(tokens.CONFIRM, {"uid": user.id, "email": user.email})
    return queue_email(
        user.email,
        _l("Confirm your e-mail address"),
        "confirm",
        language=language_for(user),
        user=user,
        confirm_url=external_url("auth.confirm", token=token),
    )


def confirm(token: str) -> User:
    data = tokens.read_token(tokens.CONFIRM, token, current_app.config["CONFIRM_TOKEN_MAX_AGE"])
    user = db.session.get(User, data["uid"]) if isinstance(data, dict) and "uid" in data else None
    if user is None or user.email != data.get("email"):
        raise AccountError(_("This confirmation link is invalid or has expired. Ask for a new one."))
    if user.is_confirmed:
        raise AccountError(_("This confirmation link has already been used. You can log in."))
    user.email_confirmed_at = utcnow()
    return user


# Login ---------------------------------------------------------------------------------------

INVALID_LOGIN = _l("Invalid e-mail or password.")


def authenticate(email: str, password: str) -> User:
    """The user these credentials belong to, or AccountError with a message to show.

    An unknown e-mail and a wrong password get the same answer; only someone who knows the
    password learns that the account is unconfirmed or blocked.
    """
    user = find_user(email)
    if user is None:
        spend_password_check(password)
        raise AccountError(str(INVALID_LOGIN))
    if not user.check_password(password):
        raise AccountError(str(INVALID_LOGIN))
    if not user.is_active:
        raise AccountError(_("This account is blocked. Contact the site's managers."))
    if not user.is_confirmed:
        raise AccountError(_("Confirm your e-mail address first: follow the link we sent you, or ask for a new one."))
    user.last_login_at = utcnow()
    return user


def spend_password_check(password: str) -> None:
    """Check `password` against a hash that matches nothing, at the cost of a real check: an
    unknown e-mail takes as long to refuse as a wrong password."""
    check_password_hash(_unmatched_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)


@cache
def _unmatched_hash(method: str) -> str:
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


# Password reset ------------------------------------------------------------------------------


def _password_fingerprint(user: User) -> str:
    # Part of the current hash: once the password changes, every older reset link is void.
    return user.password_hash[-16:]


def send_password_reset(email: str) -> None:
    user = find_user(email)
    if user is None or not user.is_active:
        return
    token = tokens.make_token(tokens.RESET, {"uid": user.id, "pw": _password_fingerprint(user)})
    queue_email(
        user.email,
        _l("Reset your password"),
        "reset_password",
        language=language_for(user),
        user=user,
        reset_url=external_url("auth.reset_password", token=token),
    )


def user_for_reset_token(token: str) -> User:
    data = tokens.read_token(tokens.RESET, token, current_app.config["RESET_TOKEN_MAX_AGE"])
    user = db.session.get(User, data["uid"]) if isinstance(data, dict) and "uid" in data else None
    if user is None or not user.is_active or data.get("pw") != _password_fingerprint(user):
        raise AccountError(_("This password reset link is invalid, has expired or was already used."))
    return user


def reset_password(token: str, new_password: str) -> User:
    user = user_for_reset_token(token)
    set_password(user, new_password)
    # Following the link proves the address, so an unconfirmed account becomes confirmed.
    if not user.is_confirmed:
        user.email_confirmed_at = utcnow()
    return user


def set_password(user: User, new_password: str) -> None:
    """Change the password and end every session opened with the old one."""
    user.set_password(new_password)
    end_sessions(user)


def end_sessions(user: User) -> None:
    """End every session and remember-me cookie of the user, on every device."""
    user.auth_version += 1


# Profile -------------------------------------------------------------------------------------


def update_profile(user: User, full_name: str | None, phone: str | None, country: str | None, timezone: str) -> None:
    """Save what a person says about themselves (the caller commits)."""
    user.full_name = (full_name or "").strip()
    user.phone = (phone or "").strip()
    user.country = country or ""
    user.timezone = timezone


def request_email_change(user: User, new_email: str) -> None:
    """Send the confirmation link to the new address.

    Whether another account uses that address is not told here (it would reveal the account):
    the link is sent all the same, and following it says so, to the person who owns the address.
    """
    new_email = lowercase_email(new_email)
    if new_email == user.email:
        raise AccountError(_("This is already your e-mail address."))
    token = tokens.make_token(tokens.CHANGE_EMAIL, {"uid": user.id, "old": user.email, "new": new_email})
    queue_email(
        new_email,
        _l("Confirm your new e-mail address"),
        "change_email",
        language=language_for(user),
        user=user,
        new_email=new_email,
        confirm_url=external_url("auth.confirm_email_change", token=token),
    )


def confirm_email_change(token: str) -> User:
    data = tokens.read_token(tokens.CHANGE_EMAIL, token, current_app.config["CONFIRM_TOKEN_MAX_AGE"])
    user = db.session.get(User, data["uid"]) if isinstance(data, dict) and "uid" in data else None
    if user is None or user.email != data.get("old"):
        raise AccountError(_("This link is invalid, has expired or was already used."))
    if find_user(data["new"]) is not None:
        raise AccountError(_("Another account uses this e-mail address."))
    old_email = user.email
    user.email = data["new"]
    user.email_confirmed_at = utcnow()
    # The old address hears of it: if someone else made the change, its owner can react.
    queue_email(
        old_email,
        _l("Your Mailer e-mail address was changed"),
        "email_changed",
        language=language_for(user),
        user=user,
        old_email=old_email,
        new_email=user.email,
    )
    return user


def avatar_dir() -> Path:
    return Path(current_app.instance_path) / "avatars"


def save_avatar(user: User, data: bytes) -> None:
    """Check an uploaded image by its content and size, then store a re-encoded copy.

    Re-encoding drops whatever else the file carried (metadata, appended payloads).
    """
    if len(data) > current_app.config["AVATAR_MAX_BYTES"]:
        limit_kb = current_app.config["AVATAR_MAX_BYTES"] // 1024
        raise AccountError(_("The image is too large: at most %(limit)s KB.", limit=limit_kb))
    try:
        # Pillow's own warning about large images is this check's business, below.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
        with probe:
            image_format = probe.format
            # Opening reads only the header: a few hundred bytes can announce an image that
            # takes gigabytes once decoded, so its size is checked before anything decodes it.
            width, height = probe.size
            if width * height > AVATAR_MAX_PIXELS:
                raise AccountError(
                    _(
                        "The image is too large: at most %(limit)s megapixels (it has %(width)s × %(height)s pixels).",
                        limit=AVATAR_MAX_PIXELS // 1_000_000,
                        width=width,
                        height=height,
                    )
                )
            probe.verify()
        if image_format not in AVATAR_FORMATS:
            raise AccountError(_("Upload a PNG, JPEG, GIF or WebP image."))
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail(AVATAR_SIZE)
            converted = image.convert("RGBA")
    except AccountError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise AccountError(_("This file is not an image we can read: upload a PNG, JPEG, GIF or WebP image.")) from None
    folder = avatar_dir()
    folder.mkdir(parents=True, exist_ok=True)
    filename = f"{user.id}-{secrets.token_hex(8)}.png"
    converted.save(folder / filename, format="PNG")
    remove_avatar(user)
    user.avatar_filename = filename


def remove_avatar(user: User) -> None:
    if user.avatar_filename:
        (avatar_dir() / user.avatar_filename).unlink(missing_ok=True)
        user.avatar_filename = None


# Roles and users (CLI, managers) -------------------------------------------------------------

ROLE_DESCRIPTIONS = {
    Role.MANAGER: "Views everyone's data, disables mailings, blocks users",
    Role.ADMIN: "Can do everything",
}


def seed_roles() -> list[Role]:
    """Create the manager and admin roles if missing; safe to run any number of times."""
    roles = []
    for name, description in ROLE_DESCRIPTIONS.items():
        role = db.session.scalar(select(Role).where(Role.name == name))
        if role is None:
            role = Role(name=name, description=description)
            db.session.add(role)
        roles.append(role)
    db.session.flush()
    return roles


def create_user(email: str, password: str, role: str | None = None, full_name: str = "") -> User:
    """Create a confirmed user (CLI), optionally with a role."""
    if find_user(email) is not None:
        raise AccountError(_("A user with the e-mail %(email)s already exists.", email=lowercase_email(email)))
    user = User(email=lowercase_email(email), full_name=full_name, email_confirmed_at=utcnow())
    user.set_password(password)
    if role:
        seed_roles()
        user.roles.append(db.session.scalar(select(Role).where(Role.name == role)))
    db.session.add(user)
    db.session.flush()
    return user


def set_blocked(user: User, blocked: bool) -> None:
    """Block or unblock a user. A block ends the user's sessions at their next request."""
    user.is_active = not blocked
    user.blocked_at = utcnow() if blocked else None
    if blocked:
        user.auth_version += 1

"""Encryption of the secrets Mailer keeps in its database (SMTP passwords, DKIM private keys).

Fernet (AES-128-CBC with an HMAC, from `cryptography`) with a key derived by HKDF-SHA256 from
MAIL_SECRETS_KEY, or from SECRET_KEY when MAIL_SECRETS_KEY is not set. Changing that key makes
the stored secrets unreadable: they must then be entered again.
"""

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

UNREADABLE = (
    "A stored secret cannot be read with the current MAIL_SECRETS_KEY (or SECRET_KEY): "
    "was the key changed? Enter the password or key again."
)


class SecretError(ValueError):
    """A stored secret that the configured key cannot decrypt."""


def _fernet() -> Fernet:
    configured = current_app.config.get("MAIL_SECRETS_KEY") or current_app.config["SECRET_KEY"]
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"mailer stored secrets").derive(
        configured.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise SecretError(UNREADABLE) from None

"""Signed, expiring tokens for links sent by e-mail."""
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

CONFIRM = "confirm-email"
RESET = "reset-password"
CHANGE_EMAIL = "change-email"
UNSUBSCRIBE = "unsubscribe"
SENDER_IDENTITY = "sender-identity"


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    # The salt keeps a token made for one purpose from being accepted for another.
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"mailer-{purpose}")


def make_token(purpose: str, payload: dict | list) -> str:
    return _serializer(purpose).dumps(payload)


def read_token(purpose: str, token: str, max_age: int | None = None):
    """The payload, or None for a forged, damaged or expired token."""
    try:
        return _serializer(purpose).loads(token, max_age=max_age)
    except BadSignature:  # SignatureExpired is a BadSignature too
        return None

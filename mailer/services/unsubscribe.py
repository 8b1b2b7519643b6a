"""Unsubscribe links: the signed token of each client, and the unsubscribe itself."""

from flask import current_app

from mailer.extensions import db
from mailer.models import Client, utcnow
from mailer.services import tokens
from mailer.services.stats import clear_stats_cache_after_commit


def unsubscribe_token(client: Client) -> str:
    """A signed token naming this client; it never expires.

    It names the address too, so a link stays bound to the person it was sent to even if the
    client's row is later deleted and its id reused, or its address changed.
    """
    return tokens.make_short_token(tokens.UNSUBSCRIBE, [client.id, client.email])


def unsubscribe_url(client: Client) -> str:
    return f"{current_app.config['EXTERNAL_URL']}/unsubscribe/{unsubscribe_token(client)}"


def client_for_unsubscribe_token(token: str) -> Client | None:
    """The client a token was made for, or None for a forged or stale token."""
    payload = tokens.read_token(tokens.UNSUBSCRIBE, token)
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], int)):
        return None
    client = db.session.get(Client, payload[0])
    if client is None or client.email.lower() != str(payload[1]).lower():
        return None
    return client


def unsubscribe(client: Client) -> bool:
    """Unsubscribe the client (the caller commits); True if this changed anything (doing it twice
    is harmless)."""
    if client.unsubscribed_at is not None:
        return False
    client.unsubscribed_at = utcnow()
    clear_stats_cache_after_commit(client.owner_id)
    return True

"""The home page figures, cached in Redis with one key per scope.

An owner's figures cover their own data; managers and admins share one "everyone" entry.
The services that change mailings or clients call `clear_stats_cache(owner_id)`, so a change
shows on the next request instead of after the cache expires.
"""

import logging

from redis.exceptions import RedisError
from sqlalchemy import distinct, event, func, select

from mailer.extensions import cache, db
from mailer.models import Client, Mailing, MailingStatus, User

log = logging.getLogger(__name__)

EVERYONE_KEY = "stats:everyone"


def owner_key(owner_id: int) -> str:
    return f"stats:owner:{owner_id}"


def compute_figures(owner_id: int | None) -> dict:
    """The figures of one owner, or of everyone when `owner_id` is None."""
    mailings = select(func.count(Mailing.id))
    running = select(func.count(Mailing.id)).where(Mailing.status == MailingStatus.RUNNING)
    # The same address kept by several owners (or twice) is one person to reach.
    unique_clients = select(func.count(distinct(Client.email)))
    if owner_id is not None:
        mailings = mailings.where(Mailing.owner_id == owner_id)
        running = running.where(Mailing.owner_id == owner_id)
        # An owner's addresses are unique (and stored lower-cased): counting the rows is the
        # same figure, read from an index instead of sorting every address.
        unique_clients = select(func.count(Client.id)).where(Client.owner_id == owner_id)
    return {
        "mailings": db.session.scalar(mailings) or 0,
        "running_mailings": db.session.scalar(running) or 0,
        "unique_clients": db.session.scalar(unique_clients) or 0,
    }


def home_figures(user: User) -> dict:
    """The figures the home page shows this user, from the cache when it has them.

    Returns {"scope": "everyone" | "own", "mailings", "running_mailings", "unique_clients"}.
    Redis being unreachable only costs the cache: the figures are computed from the database.
    """
    if user.is_manager:
        scope, key, owner_id = "everyone", EVERYONE_KEY, None
    else:
        scope, key, owner_id = "own", owner_key(user.id), user.id
    figures = _cache_get(key)
    if figures is None:
        figures = compute_figures(owner_id)
        _cache_set(key, figures)
    return {"scope": scope, **figures}


def clear_stats_cache(owner_id: int) -> None:
    """Forget the cached figures that a change to this owner's mailings or clients affects."""
    try:
        cache.delete_many(owner_key(owner_id), EVERYONE_KEY)
    except RedisError as error:
        log.warning("Could not clear the statistics cache: %s", error)


PENDING_OWNERS = "stats_owners_changed"


def clear_stats_cache_after_commit(owner_id: int) -> None:
    """Clear the owner's cached figures once the current transaction commits.

    Clearing after the commit (not before) keeps a concurrent request from caching the old
    figures again between the clear and the commit.
    """
    session = db.session()
    session.info.setdefault(PENDING_OWNERS, set()).add(owner_id)
    # One lasting listener per session (a `once` listener cannot be registered again after it
    # fired); it does nothing on commits that changed nothing counted here.
    if not event.contains(session, "after_commit", _clear_pending_owners):
        event.listen(session, "after_commit", _clear_pending_owners)


def _clear_pending_owners(session) -> None:
    for owner_id in session.info.pop(PENDING_OWNERS, set()):
        clear_stats_cache(owner_id)


def _cache_get(key: str) -> dict | None:
    try:
        value = cache.get(key)
    except RedisError as error:
        log.warning("Statistics cache unavailable, computing the figures: %s", error)
        return None
    return value if isinstance(value, dict) else None


def _cache_set(key: str, figures: dict) -> None:
    try:
        cache.set(key, figures)
    except RedisError as error:
        log.warning("Could not store the statistics in the cache: %s", error)

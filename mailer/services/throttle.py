"""Throttling per SMTP server, shared by every worker on every machine through Redis.

Two limits, each optional: a message rate in `limits` notation ("50 per second; 10000 per
hour", a moving window kept by the `limits` library that Flask-Limiter brings) and a number of
connections open at once (leases in a Redis sorted set: a slot is held while a connection is open
and renewed with every message; a dead worker's slot expires). A throttled send waits; it never
fails because of the throttle. While a run waits, it says so (for its run page).
"""

import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

SLOTS_KEY = "mailer:smtp-connections:{server}"
HELD_BACK_KEY = "mailer:held-back:run-{run}"
# A waiting send looks again at least this often (seconds).
LONGEST_NAP = 0.5

# Take a connection slot if fewer than ARGV[4] unexpired ones are held (or this token holds one).
ACQUIRE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
    redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[2] - ARGV[1]) + 60)
    return 1
end
return 0
"""


@dataclass(frozen=True)
class Limits:
    """A server's limits: `key` names the server for the counters every worker shares."""

    key: str
    rate: str = ""  # limits notation, "" for none
    max_connections: int | None = None

    @property
    def items(self) -> list[RateLimitItem]:
        return parse_many(self.rate) if self.rate else []

    @property
    def any(self) -> bool:
        return bool(self.rate or self.max_connections)


class Throttle:
    """The limits of one server, as seen by one worker's sending threads."""

    def __init__(self, limits: Limits, redis_url: str, run_id: int, slot_seconds: float):
        self.limits = limits
        self.items = limits.items
        self.run_id = run_id
        self.slot_seconds = slot_seconds
        self.redis = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        self.rate_limiter = MovingWindowRateLimiter(storage_from_string(redis_url)) if self.items else None
        self.acquire = self.redis.register_script(ACQUIRE_SLOT)
        self.slots = SLOTS_KEY.format(server=limits.key)
        # Set when the worker stops: a send still waiting for the throttle gives up (unsent).
        self.stopped = threading.Event()

    def new_token(self) -> str:
        return secrets.token_hex(8)

    # Connections --------------------------------------------------------------------------------

    def take_connection(self, token: str) -> bool:
        """Wait for a connection slot (when the server has a connection limit); False if the
        worker stopped meanwhile."""
        if not self.limits.max_connections:
            return True
        waited_since = None
        while not self.stopped.is_set():
            now = time.time()
            if self._call(
                self.acquire, keys=[self.slots], args=[now, now + self.slot_seconds, token, self.limits.max_connections]
            ):
                return True
            waited_since = waited_since or now
            self.held_back(f"{self.limits.max_connections} connections at once", waited_since)
            self.stopped.wait(0.05)
        return False

    def renew_connection(self, token: str) -> None:
        if self.limits.max_connections:
            self._call(self.redis.zadd, self.slots, {token: time.time() + self.slot_seconds}, xx=True)

    def give_back_connection(self, token: str) -> None:
        if self.limits.max_connections:
            self._call(self.redis.zrem, self.slots, token)

    # Rate ---------------------------------------------------------------------------------------

    def wait_for_rate(self) -> bool:
        """Wait until every rate limit of the server allows one more message, and count it;
        False if the worker stopped meanwhile."""
        if self.rate_limiter is None:
            return True
        waited_since = None
        while not self.stopped.is_set():
            blocked = next((item for item in self.items if not self._test(item)), None)
            if blocked is None and all(self._hit(item) for item in self.items):
                return True
            item = blocked or self.items[0]
            waited_since = waited_since or time.time()
            self.held_back(str(item), waited_since)
            reset_at = self._reset_time(item)
            self.stopped.wait(min(max(reset_at - time.time(), 0.005), LONGEST_NAP))
        return False

    def _test(self, item: RateLimitItem) -> bool:
        return self._call(self.rate_limiter.test, item, self.limits.key, default=True)

    def _hit(self, item: RateLimitItem) -> bool:
        return self._call(self.rate_limiter.hit, item, self.limits.key, default=True)

    def _reset_time(self, item: RateLimitItem) -> float:
        stats = self._call(self.rate_limiter.get_window_stats, item, self.limits.key, default=None)
        return stats.reset_time if stats is not None else time.time() + 0.05

    # Telling the run page -------------------------------------------------------------------------

    def held_back(self, limit: str, since: float) -> None:
        """Note for the run page that the run waits for this limit (kept a few seconds)."""
        if time.time() - since < 1:
            return  # a short wait is the throttle doing its job, not news
        note = json.dumps({"limit": limit, "since": since, "server": self.limits.key})
        self._call(self.redis.set, HELD_BACK_KEY.format(run=self.run_id), note, ex=5)

    def _call(self, function, *args, default=1, **kwargs):
        """A Redis call; while Redis is away the throttle lets the send through rather than
        stopping all mail (the relay's own limits still apply)."""
        try:
            return function(*args, **kwargs)
        except RedisError as error:
            log.warning("throttle: Redis unreachable (%s); sending without the shared limits", error)
            return default


def held_back(redis: Redis, run_id: int) -> dict | None:
    """What the run waits for, if it is being held back by a server's limit right now."""
    try:
        note = redis.get(HELD_BACK_KEY.format(run=run_id))
    except RedisError:
        return None
    return json.loads(note) if note else None

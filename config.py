"""Configuration classes. Every setting comes from the environment.

The entry points (`wsgi.py`, `worker.py`, the `flask` command) first read a `.env` file at the top
of the checkout into the environment (`load_env_file`); importing this module reads no file, so
the tests, which import it directly, never see a developer's `.env`.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_PATH = Path(os.environ.get("MAILER_INSTANCE_DIR", BASE_DIR / "instance"))

DEV_SECRET_KEY = "dev-secret-key-change-me"


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def default_database_url() -> str:
    return f"sqlite:///{INSTANCE_PATH / 'mailer.db'}"


def database_url(url: str | None, default: str) -> str:
    """DATABASE_URL with PostgreSQL pinned to psycopg2, the driver Mailer ships with."""
    if not url:
        return default
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
    INSTANCE_DIR = str(INSTANCE_PATH)

    SQLALCHEMY_DATABASE_URI = database_url(os.environ.get("DATABASE_URL"), default_database_url())
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

    # Outgoing mail (Flask-Mail).
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "127.0.0.1")
    MAIL_PORT = env_int("MAIL_PORT", 8025)
    MAIL_USE_TLS = env_bool("MAIL_USE_TLS")
    MAIL_USE_SSL = env_bool("MAIL_USE_SSL")
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "Mailer <mailer@localhost>")
    MAIL_TIMEOUT = env_int("MAIL_TIMEOUT", 30)
    # Throttling of the built-in server, in limits notation ("50 per second; 10000 per hour");
    # empty means no rate limit, 0 connections means no connection limit.
    MAIL_RATE_LIMIT = os.environ.get("MAIL_RATE_LIMIT", "").strip()
    MAIL_MAX_CONNECTIONS = env_int("MAIL_MAX_CONNECTIONS", 0)
    # Encrypts the SMTP passwords and DKIM keys stored in the database; SECRET_KEY when unset.
    MAIL_SECRETS_KEY = os.environ.get("MAIL_SECRETS_KEY") or None
    # Domain used in Message-IDs of mailing messages.
    MAIL_MESSAGE_ID_DOMAIN = os.environ.get("MAIL_MESSAGE_ID_DOMAIN", "mailer.localhost")

    # External address of the site, used for links inside e-mails.
    EXTERNAL_URL = os.environ.get("EXTERNAL_URL", "http://127.0.0.1:5000").rstrip("/")

    # Sessions and cookies.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    REMEMBER_COOKIE_DURATION = 60 * 60 * 24 * 30

    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None

    # How passwords are hashed (werkzeug's generate_password_hash): scrypt, slow on purpose.
    PASSWORD_HASH_METHOD = "scrypt"

    # Token lifetimes, in seconds.
    CONFIRM_TOKEN_MAX_AGE = env_int("CONFIRM_TOKEN_MAX_AGE", 60 * 60 * 48)
    RESET_TOKEN_MAX_AGE = env_int("RESET_TOKEN_MAX_AGE", 60 * 60)

    # Login throttling (Flask-Limiter, stored in the Redis of REDIS_URL).
    RATELIMIT_SWALLOW_ERRORS = True
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_KEY_PREFIX = "mailer-limits"
    # Failed logins from one client address, and for one account from one client address (the
    # account's owner, elsewhere, is never locked out).
    LOGIN_LIMIT_PER_ADDRESS = os.environ.get("LOGIN_LIMIT_PER_ADDRESS", "20 per minute")
    LOGIN_LIMIT_PER_ACCOUNT = os.environ.get("LOGIN_LIMIT_PER_ACCOUNT", "5 per minute; 30 per hour")
    # Forms that send an e-mail (registration, confirmation link, password reset, change of
    # address), together: per client address, and per recipient address.
    MAIL_LIMIT_PER_ADDRESS = os.environ.get("MAIL_LIMIT_PER_ADDRESS", "10 per hour")
    MAIL_LIMIT_PER_RECIPIENT = os.environ.get("MAIL_LIMIT_PER_RECIPIENT", "3 per hour")
    # Confirmation e-mails for sender addresses that one user may have sent (add, send again).
    SENDER_CONFIRM_LIMIT = os.environ.get("SENDER_CONFIRM_LIMIT", "10 per hour")

    # Statistics cache (Flask-Caching on Redis).
    CACHE_TYPE = "RedisCache"  # on the Redis of REDIS_URL
    CACHE_KEY_PREFIX = "mailer-cache:"
    CACHE_DEFAULT_TIMEOUT = env_int("CACHE_DEFAULT_TIMEOUT", 300)
    # A Redis that does not answer costs at most a second; the figures are then computed.
    CACHE_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}

    # Background work (RQ, rq-scheduler).
    RQ_QUEUE = os.environ.get("RQ_QUEUE", "mailer")
    DISPATCH_INTERVAL = env_int("DISPATCH_INTERVAL", 5)
    # Deliveries claimed at once by a worker, and SMTP transactions each worker keeps in flight.
    SEND_CHUNK_SIZE = env_int("SEND_CHUNK_SIZE", 100)
    SEND_CONNECTIONS = env_int("SEND_CONNECTIONS", 16)
    # Transient failures (4xx, lost connection, timeout) are retried with a doubling back-off
    # (SEND_RETRY_BASE_DELAY, capped at SEND_RETRY_MAX_DELAY) until SEND_RETRY_WINDOW seconds
    # after the first try; then the delivery fails.
    SEND_RETRY_BASE_DELAY = env_int("SEND_RETRY_BASE_DELAY", 30)
    SEND_RETRY_MAX_DELAY = env_int("SEND_RETRY_MAX_DELAY", 1800)
    SEND_RETRY_WINDOW = env_int("SEND_RETRY_WINDOW", 6 * 3600)
    # A claim is a lease the live worker renews every third of it; only a dead (or cut off)
    # worker's lease expires, and the reconciler gives its deliveries to others.
    SEND_LEASE_SECONDS = env_int("SEND_LEASE_SECONDS", 60)
    # The longest one SMTP transaction may take, whatever the server does; then it is cut.
    SEND_DELIVERY_TIMEOUT = env_int("SEND_DELIVERY_TIMEOUT", 120)
    # On SIGTERM, how long the messages in flight may take to finish before they are cut.
    SEND_STOP_GRACE = env_int("SEND_STOP_GRACE", 5)
    RECONCILE_INTERVAL = env_int("RECONCILE_INTERVAL", 30)

    # How many reverse proxies in front of the app add X-Forwarded-For / -Proto / -Host; their
    # headers are believed for the client's address, scheme and host. 0: nobody's are.
    TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)

    AVATAR_MAX_BYTES = env_int("AVATAR_MAX_BYTES", 1024 * 1024)
    MAX_CONTENT_LENGTH = env_int("MAX_CONTENT_LENGTH", 32 * 1024 * 1024)

    # The Outbox page shows what the local SMTP sink captured (development only).
    OUTBOX_DIR = os.environ.get("OUTBOX_DIR", str(INSTANCE_PATH / "outbox"))
    SHOW_OUTBOX = False

    BOOTSTRAP_SERVE_LOCAL = True

    # The interface's language when neither the user's profile nor the browser names one we
    # have: "en" or "ru".
    DEFAULT_LOCALE = os.environ.get("DEFAULT_LOCALE", "en").strip() or "en"


class DevelopmentConfig(Config):
    DEBUG = True
    SHOW_OUTBOX = True


class TestingConfig(Config):
    TESTING = True
    WTF_CSRF_ENABLED = False
    SQLALCHEMY_DATABASE_URI = database_url(os.environ.get("DATABASE_URL"), "sqlite://")
    # Flask-Mail would drop messages under TESTING; the tests read them from a real SMTP sink.
    MAIL_SUPPRESS_SEND = False
    RATELIMIT_KEY_PREFIX = "mailer-test-limits"
    CACHE_KEY_PREFIX = "mailer-test-cache:"
    SHOW_OUTBOX = True
    # One cheap round instead of scrypt (about 130 ms a hash): the tests hash and check
    # passwords hundreds of times, and what they test is that it is done, not its cost.
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1"


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True

    @staticmethod
    def check(secret_key: str | None) -> None:
        """Refuse to run production without a real secret key."""
        if not secret_key or secret_key == DEV_SECRET_KEY or len(secret_key) < 16:
            raise RuntimeError(
                "SECRET_KEY must be set to a long random value in production "
                "(for example: python -c 'import secrets; print(secrets.token_hex(32))')."
            )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}

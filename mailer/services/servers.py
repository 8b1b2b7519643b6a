"""SMTP servers: validation of what an admin enters, the connection test, and which server a
mailing leaves through. No request objects here.

The built-in server is the one of the MAIL_* settings; it exists without any setup. A mailing
uses the server it names, else the server marked default, else the built-in one.
"""

import smtplib
import socket
import ssl
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from limits import RateLimitItem, parse_many
from sqlalchemy import select, update

from mailer.extensions import db
from mailer.i18n import lazy_text as _l
from mailer.models import Mailing, Security, SmtpServer
from mailer.services import secrets
from mailer.services.addresses import AddressError, ascii_domain
from mailer.services.dkim_signing import DkimKey, DkimKeyError, check_private_key
from mailer.services.errors import FieldError

BUILTIN_KEY = "builtin"
BUILTIN_NAME = _l("Built-in server (MAIL_* settings)")
NAME_MAX_LENGTH = 100


class ServerError(FieldError):
    """A server setting that cannot be used."""


@dataclass(frozen=True)
class ServerSettings:
    """Everything the sending engine needs to talk to one server, secrets decrypted."""

    key: str  # stable name for throttling: "server-<id>" or "builtin"
    name: str
    host: str
    port: int
    security: Security
    username: str | None
    password: str | None
    rate_limits: str  # limits notation, "" for no limit
    max_connections: int | None  # None: no limit
    dkim: DkimKey | None

    def __repr__(self) -> str:  # the password stays out of logs
        return f"ServerSettings(key={self.key!r}, host={self.host!r}, port={self.port})"

    @property
    def rate_limit_items(self) -> list[RateLimitItem]:
        return parse_many(self.rate_limits) if self.rate_limits else []


# Validation -------------------------------------------------------------------------------------


def normalize_rate_limit(text: str | None) -> str | None:
    """The rate limit as entered (trimmed), after checking it with the limits parser; None for none.

    Several limits are separated by ";" (or ","), e.g. "50 per second; 10000 per hour".
    """
    text = " ".join((text or "").split())
    if not text:
        return None
    try:
        items = parse_many(text)
    except ValueError:
        items = []
    if not items:
        raise ServerError(
            _(
                "“%(text)s” is not a rate limit. Write it as “50 per second”, or several joined "
                "by “;”: “50 per second; 10000 per hour”.",
                text=text,
            ),
            "rate_limit",
        )
    if any(item.amount < 1 for item in items):
        raise ServerError(_("A rate limit allows at least one message per period."), "rate_limit")
    return "; ".join(part.strip() for part in text.replace(",", ";").split(";") if part.strip())


def check_max_connections(value: int | None) -> int | None:
    if value is None or value == 0:
        return None
    if value < 0 or value > 1000:
        raise ServerError(
            _("Maximum connections is a number from 1 to 1000, or empty for no limit."), "max_connections"
        )
    return value


def prepare_server(
    server: SmtpServer,
    *,
    new_password: str | None = None,
    clear_password: bool = False,
    new_dkim_key: str | None = None,
    clear_dkim_key: bool = False,
) -> None:
    """Check and tidy a server an admin created or changed, store new secrets encrypted, and keep
    at most one server marked default. Raises ServerError and changes nothing stored then."""
    # The row is flushed at the commit, after the other default was unmarked; a query on the
    # way must not flush it earlier.
    with db.session.no_autoflush:
        _prepare_server(server, new_password, clear_password, new_dkim_key, clear_dkim_key)


def _prepare_server(
    server: SmtpServer, new_password: str | None, clear_password: bool, new_dkim_key: str | None, clear_dkim_key: bool
) -> None:
    server.name = " ".join((server.name or "").split())
    if not server.name:
        raise ServerError(_("Give the server a name."), "name")
    if len(server.name) > NAME_MAX_LENGTH:
        raise ServerError(_("A name has at most %(limit)s characters.", limit=NAME_MAX_LENGTH), "name")
    same_name = select(SmtpServer.id).where(SmtpServer.name == server.name)
    if server.id is not None:
        same_name = same_name.where(SmtpServer.id != server.id)
    if db.session.scalar(same_name) is not None:
        raise ServerError(_("Another server has this name."), "name")
    host = (server.host or "").strip()
    try:
        server.host = ascii_domain(host) if host else ""
    except AddressError as error:
        raise ServerError(str(error), "host") from None
    if not server.host or any(char.isspace() or char in "/@" for char in server.host):
        raise ServerError(_("Enter the server's host name or IP address, e.g. smtp.example.com."), "host")
    if server.port is None or not 1 <= server.port <= 65535:
        raise ServerError(_("The port is a number from 1 to 65535 (587 for STARTTLS, 465 for TLS)."), "port")
    server.security = Security(server.security or Security.STARTTLS)
    server.username = (server.username or "").strip() or None
    server.rate_limit = normalize_rate_limit(server.rate_limit)
    server.max_connections = check_max_connections(server.max_connections)

    if clear_password:
        server.password_encrypted = None
    elif new_password:
        server.password_encrypted = secrets.encrypt(new_password)

    server.dkim_selector = (server.dkim_selector or "").strip() or None
    try:
        server.dkim_domain = ascii_domain(server.dkim_domain.strip()) if (server.dkim_domain or "").strip() else None
    except AddressError as error:
        raise ServerError(str(error), "dkim_domain") from None
    if clear_dkim_key:
        server.dkim_private_key_encrypted = None
    elif new_dkim_key and new_dkim_key.strip():
        try:
            check_private_key(new_dkim_key)
        except DkimKeyError as error:
            raise ServerError(str(error), "new_dkim_private_key") from None
        server.dkim_private_key_encrypted = secrets.encrypt(new_dkim_key.strip())
    if server.dkim_selector and not all(char.isalnum() or char in "-._" for char in server.dkim_selector):
        raise ServerError(
            _("A DKIM selector has letters, digits, dots, hyphens and underscores only."), "dkim_selector"
        )
    dkim_parts = [server.dkim_selector, server.dkim_domain, server.dkim_private_key_encrypted]
    if any(dkim_parts) and not all(dkim_parts):
        raise ServerError(
            _("DKIM needs a selector, a domain and a private key together (or none of them)."), "dkim_selector"
        )

    server.is_default = bool(server.is_default)
    if server.is_default:
        others = update(SmtpServer).where(SmtpServer.is_default.is_(True))
        if server.id is not None:
            others = others.where(SmtpServer.id != server.id)
        db.session.execute(others.values(is_default=False))


# Which server -----------------------------------------------------------------------------------


def builtin_server() -> ServerSettings:
    config = current_app.config
    if config.get("MAIL_USE_SSL"):
        security = Security.TLS
    elif config.get("MAIL_USE_TLS"):
        security = Security.STARTTLS
    else:
        security = Security.NONE
    try:
        rate = normalize_rate_limit(config.get("MAIL_RATE_LIMIT")) or ""
        max_connections = check_max_connections(config.get("MAIL_MAX_CONNECTIONS"))
    except ServerError as error:
        setting = "MAIL_RATE_LIMIT" if error.field == "rate_limit" else "MAIL_MAX_CONNECTIONS"
        raise ServerError(
            _("The %(setting)s setting is wrong: %(error)s", setting=setting, error=error), setting
        ) from None
    return ServerSettings(
        key=BUILTIN_KEY,
        name=str(BUILTIN_NAME),
        host=config["MAIL_SERVER"],
        port=int(config["MAIL_PORT"]),
        security=security,
        username=config.get("MAIL_USERNAME") or None,
        password=config.get("MAIL_PASSWORD") or None,
        rate_limits=rate,
        max_connections=max_connections,
        dkim=None,
    )


def settings_for(server: SmtpServer) -> ServerSettings:
    """The server's settings with its secrets decrypted; raises secrets.SecretError if the key
    changed since they were stored."""
    dkim = None
    if server.has_dkim:
        dkim = DkimKey(server.dkim_selector, server.dkim_domain, secrets.decrypt(server.dkim_private_key_encrypted))
    return ServerSettings(
        key=f"server-{server.id}",
        name=server.name,
        host=server.host,
        port=server.port,
        security=Security(server.security),
        username=server.username,
        password=secrets.decrypt(server.password_encrypted) if server.password_encrypted else None,
        rate_limits=server.rate_limit or "",
        max_connections=server.max_connections,
        dkim=dkim,
    )


def default_server() -> SmtpServer | None:
    return db.session.scalar(select(SmtpServer).where(SmtpServer.is_default.is_(True)))


def server_for_mailing(mailing: Mailing) -> ServerSettings:
    """The server a mailing leaves through: its own choice, else the default, else the built-in."""
    server = mailing.smtp_server or default_server()
    return settings_for(server) if server is not None else builtin_server()


def default_server_name() -> str:
    server = default_server()
    return server.name if server is not None else str(BUILTIN_NAME)


def server_name_for_mailing(mailing: Mailing) -> str:
    """Which server a mailing leaves through, by name, without reading any secret."""
    return mailing.smtp_server.name if mailing.smtp_server is not None else default_server_name()


def server_choices() -> list[tuple[int, str]]:
    """The servers a mailing may pick, by name (hosts and accounts stay with the admins)."""
    rows = db.session.execute(
        select(SmtpServer.id, SmtpServer.name, SmtpServer.is_default).order_by(SmtpServer.name, SmtpServer.id)
    )
    return [(row.id, f"{row.name} (default)" if row.is_default else row.name) for row in rows]


# Connection test --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionReport:
    ok: bool
    lines: list[str]


def _reply(code, text) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text or "")
    return f"{code} {' '.join(text.split())}".strip()


def check_connection(settings: ServerSettings, timeout: float | None = None) -> ConnectionReport:
    """Connect as the sending engine would and say, in sentences, what the server answered:
    the greeting, encryption, login and whether it takes international addresses."""
    timeout = timeout or current_app.config["MAIL_TIMEOUT"]
    where = f"{settings.host}:{settings.port}"
    lines: list[str] = []
    context = ssl.create_default_context()
    smtp: smtplib.SMTP | None = None
    try:
        smtp = (
            smtplib.SMTP_SSL(timeout=timeout, context=context)
            if settings.security == Security.TLS
            else smtplib.SMTP(timeout=timeout)
        )
        # smtplib checks the certificate against the host given to its constructor, which would
        # also swallow the greeting; connect() keeps the greeting, and this names the host.
        smtp._host = settings.host
        code, greeting = smtp.connect(settings.host, settings.port)
        lines.append(
            _(
                "Connected to %(where)s. The server greeted: “%(greeting)s”.",
                where=where,
                greeting=_reply(code, greeting),
            )
        )
        if code != 220:
            lines.append(_("The greeting is not the 220 “ready” answer: the server will not take mail now."))
            return ConnectionReport(False, lines)
        smtp.ehlo()
        if settings.security == Security.TLS:
            lines.append(
                _(
                    "The connection is encrypted from the start (%(version)s), and the server's certificate is valid.",
                    version=smtp.sock.version(),
                )
            )
        elif settings.security == Security.STARTTLS:
            if not smtp.has_extn("starttls"):
                lines.append(
                    _(
                        "The server does not offer STARTTLS, so the connection cannot be encrypted: "
                        "choose security “none” only if the server is on a trusted network."
                    )
                )
                return ConnectionReport(False, lines)
            smtp.starttls(context=context)
            smtp.ehlo()
            lines.append(
                _(
                    "STARTTLS worked: the connection is encrypted (%(version)s), and the "
                    "server's certificate is valid.",
                    version=smtp.sock.version(),
                )
            )
        else:
            lines.append(
                _("The connection is not encrypted (security “none”): the password and the messages travel in clear.")
            )
        if smtp.has_extn("smtputf8"):
            lines.append(_("The server accepts international addresses (SMTPUTF8)."))
        else:
            lines.append(
                _(
                    "The server does not offer SMTPUTF8: addresses with non-Latin characters before "
                    "the @ cannot be sent through it."
                )
            )
        if not settings.username:
            lines.append(_("No login is set: the server is used without authentication."))
        elif not settings.password:
            lines.append(
                _("A user name (%(username)s) is set but no password: enter the password.", username=settings.username)
            )
            return ConnectionReport(False, lines)
        elif not smtp.has_extn("auth"):
            lines.append(
                _("The server does not offer login (AUTH) on this connection: it may only after STARTTLS.")
                if settings.security == Security.NONE
                else _("The server does not offer login (AUTH) on this connection.")
            )
            return ConnectionReport(False, lines)
        else:
            try:
                smtp.login(settings.username, settings.password)
            except smtplib.SMTPAuthenticationError as error:
                lines.append(
                    _(
                        "The server refused the login of %(username)s: “%(error)s”.",
                        username=settings.username,
                        error=_reply(error.smtp_code, error.smtp_error),
                    )
                )
                return ConnectionReport(False, lines)
            lines.append(_("Logged in as %(username)s.", username=settings.username))
        return ConnectionReport(True, lines)
    except ssl.SSLCertVerificationError as error:
        lines.append(_("The server's TLS certificate cannot be trusted: %(message)s.", message=error.verify_message))
    except ssl.SSLError:
        lines.append(
            _(
                "The TLS handshake failed: check that the port and the security setting match "
                "(465 is TLS from the start, 587 STARTTLS)."
            )
        )
    except ConnectionRefusedError:
        lines.append(
            _(
                "Nothing answers at %(where)s (connection refused): check the host and the port, "
                "and that the server is running.",
                where=where,
            )
        )
    except socket.gaierror:
        lines.append(_("The host name “%(host)s” cannot be found.", host=settings.host))
    except TimeoutError:
        lines.append(
            _("%(where)s did not answer within %(timeout)s seconds.", where=where, timeout=format(timeout, "g"))
        )
    except smtplib.SMTPServerDisconnected:
        lines.append(
            _(
                "%(where)s closed the connection without an SMTP answer: is it an SMTP server, and is "
                "the security setting right?",
                where=where,
            )
        )
    except smtplib.SMTPResponseException as error:
        lines.append(_("The server answered “%(error)s”.", error=_reply(error.smtp_code, error.smtp_error)))
    except (OSError, smtplib.SMTPException, ValueError) as error:
        reason = getattr(error, "strerror", None) or _("the connection failed")
        lines.append(_("Could not talk to %(where)s: %(reason)s.", where=where, reason=reason))
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
    return ConnectionReport(False, lines)


def check_server(server: SmtpServer) -> ConnectionReport:
    try:
        settings = settings_for(server)
    except secrets.SecretError as error:
        return ConnectionReport(False, [str(error)])
    return check_connection(settings)

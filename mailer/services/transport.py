"""Talking to the SMTP server: one connection per sending thread, and a pool of such threads.

A relay takes 20-200 ms to answer each message, so a worker that sends one message at a time is
bound by the server's answer time, not by its CPU. `SenderPool` keeps SEND_CONNECTIONS SMTP
transactions in flight at once, each thread on its own connection; the worker's main thread
claims, renders and records while they wait. The settings are Flask-Mail's (`MAIL_*`).

Every transaction is done step by step (MAIL, RCPT, DATA), so each step's reply is known and
recorded, which Flask-Mail's `send` does not give. A failure after the message was handed to the
server (a lost connection while it answers the end of DATA) is an *unknown* outcome: the server
may have accepted it.
"""

import logging
import queue
import re
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass

import flask_mail
from flask import current_app

from mailer.models import Security
from mailer.services.addresses import smtputf8_refusal
from mailer.services.servers import ServerSettings
from mailer.services.throttle import Throttle

log = logging.getLogger(__name__)

# "Service not available, closing transmission channel": the connection is over.
CLOSING = 421
# Lost or refused connections in a row after which the server counts as unreachable for the
# rest of the job: the messages still queued get the same answer at once instead of a timeout each.
BROKEN_IN_A_ROW_LIMIT = 3
DOT_AT_LINE_START = re.compile(rb"(?m)^\.")
# A connection that has had nothing to send for this long gives its throttle slot back.
IDLE_SECONDS = 1.0


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    use_tls: bool = False
    use_ssl: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30
    suppress: bool = False
    name: str = "The SMTP server"

    @classmethod
    def from_app(cls) -> "SmtpSettings":
        """The built-in server, from Flask-Mail's state (MAIL_*) and MAIL_TIMEOUT."""
        mail = current_app.extensions["mail"]
        return cls(
            mail.server,
            mail.port,
            mail.use_tls,
            mail.use_ssl,
            mail.username,
            mail.password,
            current_app.config["MAIL_TIMEOUT"],
            mail.suppress,
        )

    @classmethod
    def for_server(cls, server: ServerSettings) -> "SmtpSettings":
        """A server of the admin panel's (or the built-in one), as `servers.server_for_mailing` gives it."""
        mail = current_app.extensions["mail"]
        return cls(
            server.host,
            server.port,
            server.security == Security.STARTTLS,
            server.security == Security.TLS,
            server.username,
            server.password,
            current_app.config["MAIL_TIMEOUT"],
            mail.suppress,
            server.name,
        )

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> smtplib.SMTP:
        """An open, greeted (and, as configured, encrypted and logged-in) connection."""
        if self.use_ssl:
            host = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        else:
            host = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.use_tls:
                host.starttls(context=ssl.create_default_context())
            if self.username and self.password:
                host.login(self.username, self.password)
        except BaseException:
            host.close()
            raise
        return host


@dataclass(frozen=True)
class Reply:
    """What became of one message: the server's reply, or the error that stopped it."""

    code: int | None
    text: str | None = None
    error: str | None = None
    # True when the connection cannot be used any more after this.
    broken: bool = False
    # True when the message was handed over and the answer was lost: it may have been delivered.
    unknown: bool = False
    # True when trying again cannot help (e.g. an international address and a server without
    # SMTPUTF8), whatever the code.
    final: bool = False

    @property
    def accepted(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.final or (self.code is not None and self.code >= 500)

    @property
    def description(self) -> str:
        return self.error if self.error is not None else f"{self.code} {self.text}"


# A message a stopping worker never sent (it was still waiting for the server's throttle).
NOT_SENT = Reply(None, error="Not sent: the worker stopped while waiting for the server's limits")


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def human_error(error: Exception, timeout: float) -> str:
    """What went wrong, in words for the attempt log (never Python's exception text)."""
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f"the server refused the login ({error.smtp_code} {_text(error.smtp_error)})"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"the server answered {error.smtp_code} {_text(error.smtp_error)}"
    if isinstance(error, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(error, ConnectionRefusedError):
        return "the server refused the connection (is it running, on this port?)"
    if isinstance(error, socket.gaierror):
        return "the server's name could not be found"
    if isinstance(error, ssl.SSLCertVerificationError):
        return "the server's TLS certificate could not be verified"
    if isinstance(error, ssl.SSLError):
        return "the TLS handshake with the server failed"
    if isinstance(error, (smtplib.SMTPServerDisconnected, ConnectionResetError, BrokenPipeError)):
        return "the server closed the connection"
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return "the server does not support what its settings ask for (STARTTLS or login)"
    return f"a network error ({type(error).__name__})"


def describe_error(settings: SmtpSettings, error: Exception) -> str:
    return f"Cannot connect to the SMTP server {settings.label}: {human_error(error, settings.timeout)}"


class SmtpTransport:
    """One SMTP connection, opened on first use and again after it breaks. Used by one thread at
    a time; `abort` may be called from another thread to end a stalled transaction."""

    def __init__(self, settings: SmtpSettings, throttle: Throttle | None = None):
        self.settings = settings
        self.throttle = throttle
        self.slot = throttle.new_token() if throttle else None
        self.host: smtplib.SMTP | None = None
        # When the transaction in progress began (time.monotonic()), None when idle.
        self.busy_since: float | None = None

    def deliver(self, data: bytes, sender: str, recipient: str, smtputf8: bool = False) -> Reply:
        """One SMTP transaction for one recipient; envelope addresses with IDNA domains, and
        `smtputf8` when one of them has a non-ASCII local part. Never raises for anything the
        server or the network does."""
        if self.settings.suppress:
            return Reply(250, "Not sent: MAIL_SUPPRESS_SEND is on")
        if self.throttle and not (
            (self.host is not None or self.throttle.take_connection(self.slot)) and self.throttle.wait_for_rate()
        ):
            return NOT_SENT
        self.busy_since = time.monotonic()
        try:
            if self.host is None:
                try:
                    self.host = self.settings.connect()
                except (OSError, smtplib.SMTPException) as error:
                    self.close()
                    return Reply(None, error=describe_error(self.settings, error), broken=True)
            reply = self._transaction(self.host, data, sender, recipient, smtputf8)
            if self.throttle:
                self.throttle.renew_connection(self.slot)
            if reply.broken:
                self.close()
            return reply
        finally:
            self.busy_since = None

    def _transaction(self, host: smtplib.SMTP, data: bytes, sender: str, recipient: str, smtputf8: bool) -> Reply:
        handed_over = False
        try:
            host.ehlo_or_helo_if_needed()
            if smtputf8 and not host.has_extn("smtputf8"):
                address = recipient if not recipient.split("@")[0].isascii() else sender
                return Reply(None, error=smtputf8_refusal(address, self.settings.name), final=True)
            options = ["SMTPUTF8"] if smtputf8 else []
            if host.has_extn("pipelining"):
                # RFC 2920: MAIL, RCPT and DATA in one write, their three replies read after.
                # Half the round trips of a step-by-step transaction, and each step's reply is
                # still known.
                commands = (
                    f"MAIL FROM:{smtplib.quoteaddr(sender)}{''.join(' ' + o for o in options)}\r\n"
                    f"RCPT TO:{smtplib.quoteaddr(recipient)}\r\nDATA\r\n"
                )
                host.send(commands.encode("utf-8" if smtputf8 else "ascii"))
                replies = [host.getreply(), host.getreply(), host.getreply()]
            else:
                replies = [host.mail(sender, options)]
                if replies[0][0] == 250:
                    replies.append(host.rcpt(recipient))
                    if replies[1][0] in (250, 251):
                        host.putcmd("data")
                        replies.append(host.getreply())
            refused = self._refusal(host, replies)
            if refused is not None:
                return refused
            payload = DOT_AT_LINE_START.sub(b"..", data)
            if not payload.endswith(b"\r\n"):
                payload += b"\r\n"
            handed_over = True
            host.send(payload + b".\r\n")
            code, text = host.getreply()
            return Reply(code, _text(text), broken=code == CLOSING)
        except smtplib.SMTPResponseException as error:
            return Reply(error.smtp_code, _text(error.smtp_error), broken=True, unknown=handed_over)
        except (OSError, smtplib.SMTPException) as error:  # timeouts, resets, a closed connection
            detail = human_error(error, self.settings.timeout)
            if handed_over:
                return Reply(
                    None,
                    error=f"Connection lost after the message was handed over ({detail}); it may have been delivered",
                    broken=True,
                    unknown=True,
                )
            return Reply(None, error=f"Connection lost: {detail}", broken=True)

    def _refusal(self, host: smtplib.SMTP, replies: list[tuple[int, bytes]]) -> Reply | None:
        """The Reply for a refused MAIL, RCPT or DATA (the first refusal counts), or None when the
        server waits for the message. The refused transaction is ended so that the connection
        serves the next message."""
        steps = (("Sender refused", (250,)), ("Recipient refused", (250, 251)), ("DATA refused", (354,)))
        refusal = next(
            (
                (what, code, text)
                for (what, good), (code, text) in zip(steps, replies, strict=False)
                if code not in good
            ),
            None,
        )
        if refusal is None:
            return None
        what, code, text = refusal
        if replies[-1][0] == 354:  # cannot happen with a refused recipient, unless the server errs
            host.send(b".\r\n")
            host.getreply()
        if code == CLOSING:
            return Reply(code, f"{what}: {_text(text)}", broken=True)
        host.rset()
        return Reply(code, f"{what}: {_text(text)}")

    def abort(self) -> None:
        """Cut the connection under a stalled transaction (from another thread): its thread gets
        an error at once instead of waiting for the server."""
        host = self.host
        sock = getattr(host, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        host, self.host = self.host, None
        if self.throttle:
            self.throttle.give_back_connection(self.slot)
        if host is None:
            return
        try:
            host.quit()
        except (OSError, smtplib.SMTPException):
            host.close()


class SenderPool:
    """Threads that each keep one SMTP connection and send the messages handed to them.

    Messages go in through one queue and replies come out through another, each tagged with the
    caller's key; a message still in the queue can be taken back (`take_back`) when the caller
    must stop handing out work.
    """

    def __init__(self, settings: SmtpSettings, size: int, throttle: Throttle | None = None):
        self.settings = settings
        self.throttle = throttle
        self.outgoing: queue.SimpleQueue = queue.SimpleQueue()
        self.replies: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.broken_in_a_row = 0
        # Set once the server looks unreachable; the messages still queued fail with it at once.
        self.unreachable: str | None = None
        self.transports = [SmtpTransport(settings, throttle) for _ in range(max(size, 1))]
        self.threads = [
            threading.Thread(target=self._serve, args=(transport,), name=f"smtp-{number}", daemon=True)
            for number, transport in enumerate(self.transports)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, key, data: bytes, sender: str, recipient: str, smtputf8: bool = False) -> None:
        """Queue one message; its Reply comes out of `collect` with `key`."""
        self.outgoing.put((key, data, sender, recipient, smtputf8))

    def collect(self, timeout: float) -> list[tuple[object, Reply]]:
        """The replies that are ready, waiting up to `timeout` seconds for the first one."""
        try:
            done = [self.replies.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                done.append(self.replies.get_nowait())
            except queue.Empty:
                return done

    def take_back(self) -> list:
        """Remove the messages no connection has started; returns their keys. Those waiting for
        the throttle come back as NOT_SENT replies."""
        if self.throttle:
            self.throttle.stopped.set()
        keys = []
        while True:
            try:
                item = self.outgoing.get_nowait()
            except queue.Empty:
                return keys
            if item is not None:
                keys.append(item[0])

    def _serve(self, transport: SmtpTransport) -> None:
        while True:
            try:
                item = self.outgoing.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                # Nothing to send for a while: an idle connection would hold one of the
                # server's connection slots that another worker may need.
                if transport.throttle and transport.throttle.limits.max_connections:
                    transport.close()
                continue
            if item is None:
                return
            key, data, sender, recipient, smtputf8 = item
            self.replies.put((key, self._send(transport, data, sender, recipient, smtputf8)))

    def _send(self, transport: SmtpTransport, data: bytes, sender: str, recipient: str, smtputf8: bool) -> Reply:
        if self.unreachable is not None:
            return Reply(None, error=self.unreachable, broken=True)
        reply = transport.deliver(data, sender, recipient, smtputf8)
        with self.lock:
            if reply.broken and not reply.unknown and reply.code is None:
                self.broken_in_a_row += 1
                if self.broken_in_a_row >= BROKEN_IN_A_ROW_LIMIT and self.unreachable is None:
                    self.unreachable = reply.error
                    log.warning("SMTP server %s unreachable: %s", self.settings.label, reply.error)
            else:
                self.broken_in_a_row = 0
        return reply

    def cut_stalled(self, longest: float) -> int:
        """Abort the transactions that have taken more than `longest` seconds."""
        now, cut = time.monotonic(), 0
        for transport in self.transports:
            since = transport.busy_since
            if since is not None and now - since > longest:
                transport.abort()
                cut += 1
        return cut

    def cut_all(self) -> None:
        for transport in self.transports:
            if transport.busy_since is not None:
                transport.abort()

    def close(self) -> None:
        """Stop the threads once their current message is done, and close every connection.
        Messages still queued are dropped: take them back first."""
        self.take_back()
        for _ in self.threads:
            self.outgoing.put(None)
        for thread in self.threads:
            thread.join()
        for transport in self.transports:
            transport.close()


class MailConnection(flask_mail.Connection):
    """Flask-Mail's connection for the app's own e-mails, with MAIL_TIMEOUT on the socket
    (Flask-Mail sets none, so a silent server would hang the worker)."""

    def configure_host(self) -> smtplib.SMTP:
        host = SmtpSettings.from_app().connect()
        host.set_debuglevel(int(self.mail.debug))
        return host

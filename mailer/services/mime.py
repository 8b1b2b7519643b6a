"""The e-mails of a mailing as bytes on the wire: headers, text and HTML parts, Message-IDs."""

import binascii
import random
import time
from email.header import Header
from email.utils import formatdate, parseaddr
from functools import lru_cache

import flask_mail
from flask import current_app

from mailer.services.addresses import header_address

# RFC 5322 allows 998 characters per line; stay clear of it.
MAX_7BIT_LINE = 900


def make_message_id(delivery_id: int) -> str:
    """A unique Message-ID naming the delivery, in the configured domain. The random part only
    keeps ids apart across installations and databases; it need not be secret, and os.urandom
    (which `secrets` uses) costs more than the rest of the id on a busy machine."""
    domain = current_app.config["MAIL_MESSAGE_ID_DOMAIN"]
    return f"<mailing.{delivery_id}.{random.getrandbits(64):016x}@{domain}>"


class MailingMail(flask_mail.Message):
    """A Flask-Mail message, serialised directly instead of through the `email` package.

    The `email` package needs about 1.5 ms per message, more than everything else the sending
    engine does per recipient, and its header folders either turn a long List-Unsubscribe URL
    into encoded words (which mail programs don't parse) or leave body lines over the SMTP limit.
    The structure here is fixed and small: text, or multipart/alternative of text and HTML, each
    part 7bit when it can be, quoted-printable otherwise; headers in plain ASCII, except an
    address whose local part is not ASCII, which stays UTF-8 (RFC 6532: for SMTPUTF8 servers).
    """

    def __init__(
        self,
        *,
        subject: str,
        recipient: tuple[str, str],
        body: str,
        html: str | None,
        sender: str,
        message_id: str,
        extra_headers: dict[str, str],
        reply_to: str | None = None,
    ):
        # Flask-Mail's constructor would make a Message-ID of its own with socket.getfqdn(), which
        # can cost a DNS lookup per message; every attribute that Flask-Mail reads is set here.
        self.subject = subject
        self.recipients = [recipient]
        self.sender = sender
        self.reply_to = reply_to
        self.cc = []
        self.bcc = []
        self.body = body
        self.alts = {"html": html} if html is not None else {}
        self.date = None
        self.msgId = message_id
        self.charset = "utf-8"
        self.extra_headers = extra_headers
        self.mail_options = []
        self.rcpt_options = []
        self.attachments = []

    def as_bytes(self) -> bytes:
        headers = [
            ("From", _sender_header(self.sender)),
            ("To", ", ".join(_address(r if isinstance(r, tuple) else parseaddr(r)) for r in self.recipients)),
            *([("Reply-To", _sender_header(self.reply_to))] if self.reply_to else []),
            ("Subject", _unstructured(self.subject)),
            ("Date", formatdate(self.date, localtime=True) if self.date else _date_of_second(int(time.time()))),
            ("Message-ID", self.msgId),
            *(self.extra_headers or {}).items(),
            ("MIME-Version", "1.0"),
        ]
        head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("utf-8")
        if self.html is None:
            return head + _text_part(self.body, "plain")
        boundary = f"=_{random.getrandbits(128):032x}"  # "=_" cannot occur in quoted-printable text
        return b"".join(
            (
                head,
                f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode("ascii"),
                f"--{boundary}\r\n".encode("ascii"),
                _text_part(self.body, "plain"),
                f"\r\n--{boundary}\r\n".encode("ascii"),
                _text_part(self.html, "html"),
                f"\r\n--{boundary}--\r\n".encode("ascii"),
            )
        )

    def as_string(self) -> str:
        return self.as_bytes().decode("utf-8")


@lru_cache(maxsize=4)
def _date_of_second(second: int) -> str:
    """The Date header of this second: formatting the local time costs ~0.1 ms, once a second."""
    return formatdate(second, localtime=True)


def _text_part(text: str, subtype: str) -> bytes:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    crlf_text = "\r\n".join(lines)
    # Plain ASCII in short lines goes as it is; anything else quoted-printable, which keeps every
    # line under the SMTP limit and needs no 8BITMIME from the server.
    if crlf_text.isascii() and max(map(len, lines)) <= MAX_7BIT_LINE:
        encoding, payload = "7bit", crlf_text.encode("ascii")
    else:
        encoding, payload = "quoted-printable", binascii.b2a_qp(crlf_text.encode("utf-8"), istext=True)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'
    return head.encode("ascii") + payload


def _unstructured(value: str) -> str:
    """A header value as ASCII: RFC 2047 encoded words when it is not ASCII already."""
    value = " ".join(value.split())
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(linesep="\r\n")


@lru_cache(maxsize=16)
def _sender_header(sender: str) -> str:
    return _address(parseaddr(sender))


def _address(pair: tuple[str, str]) -> str:
    name, address = pair
    return header_address(name, address)

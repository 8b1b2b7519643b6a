"""The messages that the local SMTP sink captured under OUTBOX_DIR (development only)."""

import email
import email.policy
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from flask import current_app

OUTBOX_PAGE_SIZE = 100


@dataclass
class OutboxMessage:
    name: str
    received_at: datetime
    sender: str
    recipients: str
    subject: str


def outbox_dir() -> Path:
    return Path(current_app.config["OUTBOX_DIR"])


@dataclass
class OutboxPage:
    messages: list[OutboxMessage]
    page: int
    has_next: bool


def list_messages(search: str = "", page: int = 1, per_page: int = OUTBOX_PAGE_SIZE) -> OutboxPage:
    """The captured messages, newest first, a page at a time; `search` keeps those whose
    recipients or subject contain it (any case)."""
    folder = outbox_dir()
    if not folder.is_dir():
        return OutboxPage([], 1, False)
    page = max(page, 1)
    files = sorted(folder.glob("*.eml"), key=lambda path: path.name, reverse=True)
    needle = search.strip().lower()
    skip = (page - 1) * per_page
    if not needle:
        return OutboxPage(
            [_summary(path) for path in files[skip : skip + per_page]], page, len(files) > skip + per_page
        )
    result, matched = [], 0
    for path in files:
        message = _summary(path)
        if needle not in f"{message.recipients}\n{message.subject}".lower():
            continue
        matched += 1
        if matched <= skip:
            continue
        if len(result) == per_page:
            return OutboxPage(result, page, True)
        result.append(message)
    return OutboxPage(result, page, False)


def _summary(path: Path) -> OutboxMessage:
    with path.open("rb") as handle:
        headers = email.message_from_binary_file(handle, policy=email.policy.default, _class=EmailMessage)
    return OutboxMessage(
        name=path.name,
        received_at=datetime.fromtimestamp(path.stat().st_mtime, UTC),
        sender=str(headers.get("From", "")),
        recipients=str(headers.get("X-Envelope-To") or headers.get("To", "")),
        subject=str(headers.get("Subject", "")),
    )


def read_message(name: str) -> EmailMessage | None:
    """The message stored under this file name, or None; names cannot leave the folder."""
    if "/" in name or "\\" in name or not name.endswith(".eml"):
        return None
    path = outbox_dir() / name
    if not path.is_file():
        return None
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default, _class=EmailMessage)


def message_parts(message: EmailMessage) -> tuple[str, str | None]:
    """The plain-text and HTML bodies of a message."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return (text.get_content() if text else ""), (html.get_content() if html else None)

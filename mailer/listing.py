"""The query-string arguments of the list pages: search, sort, owner filter and the keyset
cursors of the page (`after` / `before`), read here and handed to the services as plain values.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime

from flask import request

from mailer.permissions import can_view_all
from mailer.urls import positive_int

SEARCH_MAX_LENGTH = 200
# Longer cursors name no row of any list.
CURSOR_MAX_LENGTH = 1000


@dataclass
class ListArguments:
    q: str = ""
    sort: str = ""
    owner: int | None = None
    after: tuple | None = None
    before: tuple | None = None
    # Filters of one list (e.g. a mailing's status), kept in its links.
    extra: dict = field(default_factory=dict)

    @property
    def filtered(self) -> bool:
        return bool(self.q or self.owner or any(self.extra.values()))

    def link(self, **changes) -> dict:
        """The query string of a link to the same list: its filters and sort, with `changes`;
        a link starts at the first page unless it names a cursor."""
        values = {"q": self.q or None, "owner": self.owner, "sort": self.sort, **self.extra}
        values.update(changes)
        return {**request.view_args, **{name: value for name, value in values.items() if value not in (None, "")}}


def list_arguments(
    sort_columns: dict, default_sort: str, *, extra: tuple[str, ...] = (), owner_filter: bool = True
) -> ListArguments:
    """Search, sort, owner filter and cursors as they appear in the query string. An unknown
    sort falls back to the default; only managers and admins filter by owner."""
    sort = request.args.get("sort", default_sort)
    if sort.lstrip("-") not in sort_columns:
        sort = default_sort
    owner_id = request.args.get("owner", type=positive_int) if owner_filter and can_view_all() else None
    return ListArguments(
        q=request.args.get("q", "").strip()[:SEARCH_MAX_LENGTH],
        sort=sort,
        owner=owner_id,
        after=decode_cursor(request.args.get("after")),
        before=decode_cursor(request.args.get("before")),
        extra={name: request.args.get(name, "") for name in extra},
    )


def encode_cursor(values: tuple | None) -> str | None:
    """A row's sort values as a short text for an address: strings, numbers and times."""
    if values is None:
        return None
    encoded = [{"t": value.isoformat()} if isinstance(value, datetime) else value for value in values]
    return base64.urlsafe_b64encode(json.dumps(encoded, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple | None:
    """The values of `encode_cursor`, or None for anything else (the services check their types)."""
    if not text or len(text) > CURSOR_MAX_LENGTH:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(values, list):
        return None
    decoded = []
    for value in values:
        if isinstance(value, dict):
            try:
                value = datetime.fromisoformat(value["t"])
            except (KeyError, TypeError, ValueError):
                return None
        elif not isinstance(value, str | int | float) or isinstance(value, bool):
            return None
        decoded.append(value)
    return tuple(decoded)

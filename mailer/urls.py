"""Addresses: ids and numbers in URLs and query strings, and safe redirects (`next` may only
lead to a path of this site)."""

from urllib.parse import urlsplit

from flask import Flask, redirect, url_for
from werkzeug.routing import IntegerConverter

# The largest id an integer column holds (PostgreSQL's integer); SQLite cannot even compare
# with numbers past 2**63. Larger numbers in an address name nothing.
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: a number past MAX_ID does not match (404), never a 500."""

    def __init__(
        self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID, signed: bool = False
    ):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_url_converters(app: Flask) -> None:
    # Before any route is added: each rule takes its converter when it is registered.
    app.url_map.converters["int"] = IdConverter


def positive_int(value: str) -> int:
    """For `request.args.get(name, default, type=positive_int)`: a page number or an id of 1 to
    MAX_ID. Anything else raises ValueError, so the argument falls back to its default."""
    number = int(value)
    if not 1 <= number <= MAX_ID:
        raise ValueError(f"{value!r} is not a number from 1 to {MAX_ID}")
    return number


def is_safe_path(target: str | None) -> bool:
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    # Browsers read a backslash as a slash, and ignore tabs and newlines inside URLs.
    if "\\" in target or any(ord(char) < 32 for char in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def redirect_next(target: str | None, default_endpoint: str = "main.index"):
    return redirect(target if is_safe_path(target) else url_for(default_endpoint))

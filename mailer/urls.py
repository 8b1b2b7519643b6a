"""Safe redirects: `next` may only lead to a path of this site."""
from urllib.parse import urlsplit

from flask import redirect, url_for


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

"""Hostile input on every route, for every kind of visitor: no answer is ever a 5xx.

The routes come from the app's URL map (the access matrix's list), the fields from the forms
each page shows and from the query arguments the list pages read. Values are sampled, not
crossed: every route gets each hostile value in all its fields at once, then each field on its
own with the next value in turn, so that a field is also tried while the others are valid or
absent.
"""

import io
from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import count

import pytest
from sqlalchemy import select

from mailer.extensions import db
from mailer.models import Role, User
from tests.access.test_matrix import ROUTES, Route, is_hidden, is_public, world_values
from tests.factories import make_user
from tests.support import login

HUGE = "99999999999999999999"
HOSTILE = [
    HUGE,
    "-" + HUGE,
    "-1",
    " ",
    "a\x00b",
    "x" * 1_000_000,
    "no-such-choice",
]
HOSTILE_PATH_TEXT = ["%00", "%20", "x" * 5000]
# Query arguments read by the list and report pages, the admin panel and the RQ dashboard.
QUERY_ARGUMENTS = ["page", "owner", "q", "sort", "status", "view", "date_from", "date_to", "next"]
MORE_QUERY_ARGUMENTS = ["per_page", "id", "url", "search", "flt0_0", "page_size", "desc"]
SKIPPED_FIELDS = {"csrf_token", "submit"}
# Logging out would end the visitor's session for the routes after it.
SKIPPED_ENDPOINTS = {"auth.logout"}


@dataclass
class Findings:
    failures: list[str] = field(default_factory=list)
    requests: int = 0

    def check(self, response, method: str, path: str, what: str) -> None:
        self.requests += 1
        response.close()  # a streamed CSV ends here
        if response.status_code >= 500:
            self.failures.append(f"{response.status_code} {method} {path[:120]} {what[:120]!r}")


@dataclass
class PageFields:
    """The fields of the forms a page shows: its filters (GET), its forms (POST) with the values
    they hold as shown (checked radios, selected options, filled inputs), and its file fields."""

    get: list[str] = field(default_factory=list)
    post: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    shown: dict[str, str] = field(default_factory=dict)


class FormReader(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields = PageFields()
        self.method = None
        self.select = None

    def add(self, name: str | None, value: str | None = None, *, is_file: bool = False) -> None:
        if not name or name in SKIPPED_FIELDS or self.method is None:
            return
        if is_file:
            self.fields.files.append(name)
            return
        names = self.fields.post if self.method == "post" else self.fields.get
        if name not in names:
            names.append(name)
        if value is not None and self.method == "post":
            self.fields.shown.setdefault(name, value)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.method = (attributes.get("method") or "get").lower()
        elif tag == "input":
            kind = (attributes.get("type") or "text").lower()
            checked = kind not in ("radio", "checkbox") or "checked" in attributes
            self.add(attributes.get("name"), attributes.get("value", "") if checked else None, is_file=kind == "file")
        elif tag == "textarea":
            self.add(attributes.get("name"), "")
        elif tag == "select":
            self.select = attributes.get("name")
            self.add(self.select)
        elif tag == "option" and self.select and ("selected" in attributes or self.select not in self.fields.shown):
            if "selected" in attributes:
                self.fields.shown.pop(self.select, None)
            self.add(self.select, attributes.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self.method = None
        elif tag == "select":
            self.select = None


def form_fields(html: str) -> PageFields:
    reader = FormReader()
    reader.feed(html)
    return reader.fields


def hostile_paths(route: Route, values: dict) -> list[str]:
    """The route with real ids, then with ids no database holds and hostile text arguments."""
    paths = [route.path(values)]
    if route.arguments:
        for text in HOSTILE_PATH_TEXT[:1] if not route.id_arguments else HOSTILE_PATH_TEXT:
            paths.append(
                route.path(
                    {name: (HUGE if converter == "int" else text) for name, converter in route.arguments.items()}
                )
            )
    return paths


def file_upload(value: str):
    """A CSV file (the import; other file fields refuse it): one row with the value in the
    address, one with a valid address and the value in the other cells."""
    address = f"fuzz{next(UPLOADS)}@example.com"  # a new client each time, never one to skip
    content = f"email,full_name,comment\n{value}@example.com,A,B\n{address},{value},{value}\n"
    return io.BytesIO(content.encode()), "hostile.csv"


UPLOADS = count()


def fuzz_route(client, route: Route, values: dict, findings: Findings, rotation: count) -> None:
    paths = hostile_paths(route, values)
    fields = PageFields()
    if "GET" in route.methods:
        page = client.get(paths[0])
        findings.check(page, "GET", paths[0], "")
        if page.mimetype == "text/html":
            fields = form_fields(page.get_data(as_text=True))
    for path in paths[1:]:
        for method in route.methods:
            findings.check(client.open(path, method=method), method, path, "")
    path = paths[0]
    for method in route.methods:
        if method == "GET":
            # The page's filters and the query arguments any page reads, all at once...
            names = list(dict.fromkeys(fields.get + QUERY_ARGUMENTS + MORE_QUERY_ARGUMENTS))
            # ...and its filters and page number one by one.
            single = list(dict.fromkeys(fields.get + ["page"]))
        else:
            names = single = fields.post + fields.files
        # Every field at once with each value (the long one goes in single fields only; the
        # admin panel's and the dashboard's many routes get three of them in turn)...
        values = [value for value in HOSTILE if len(value) <= 1000]
        if is_hidden(route):
            values = [values[next(rotation) % len(values)] for _ in range(3)]
        for value in values:
            findings.check(
                send(client, method, path, names, fields.files, value), method, path, f"all fields = {value}"
            )
        if is_hidden(route):
            continue  # the admin panel's and the dashboard's own code: the pass above is enough
        # ...then each field alone, with the next value in turn.
        # (On POST the other fields keep the values the page shows, so that the form can pass;
        # the few file fields get every value.)
        for name in single:
            tried = HOSTILE if name in fields.files else [HOSTILE[next(rotation) % len(HOSTILE)]]
            for value in tried:
                findings.check(
                    send(client, method, path, [name], fields.files, value, fields.shown),
                    method,
                    path,
                    f"{name} = {value}",
                )


def send(
    client,
    method: str,
    path: str,
    names: list[str],
    file_fields: list[str],
    value: str,
    others: dict[str, str] | None = None,
):
    if method == "GET":
        return client.get(path, query_string={name: value for name in names})
    data = {**(others or {}), **{name: value for name in names}}
    return client.post(
        path, data={name: file_upload(value) if name in file_fields else text for name, text in data.items()}
    )


VISITORS = ["anonymous", "owner", "manager", "admin"]


@pytest.mark.parametrize("visitor", VISITORS)
def test_no_input_gets_a_server_error(app, client, visitor):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a 500 is counted, not raised
    owner = make_user("owner@example.com")
    values = world_values(owner)
    if visitor == "manager":
        login(client, make_user("manager@example.com", role=Role.MANAGER).email)
    elif visitor == "admin":
        login(client, make_user("admin@example.com", role=Role.ADMIN).email)
    elif visitor == "owner":
        login(client, owner.email)
    findings = Findings()
    rotation = count(VISITORS.index(visitor))
    for route in ROUTES:
        if route.endpoint in SKIPPED_ENDPOINTS:
            continue
        if visitor == "anonymous" and not is_public(route):
            continue
        if visitor != "admin" and is_hidden(route):
            continue
        fuzz_route(client, route, values, findings, rotation)
        if "POST" in route.methods:
            # The POST may have deleted the objects: the next route gets new ones.
            values = world_values(db.session.scalar(select(User).where(User.email == "owner@example.com")))
    assert findings.requests > 100
    assert not findings.failures, f"{len(findings.failures)} server errors:\n" + "\n".join(findings.failures[:60])

"""The access-control matrix, built from the app's URL map so that a new route cannot escape it.

- Anonymous visitors are sent to the login page by every route that is not public; the admin
  panel and the RQ dashboard answer 404 instead.
- For every route that takes an object id, owner B asking for owner A's object gets 404, with
  every method the route accepts.
- A manager may view others' objects, disable / enable mailings and block / unblock users, and
  nothing else: every other form or action on others' objects answers 403 or 404.

A route taking an id argument that the matrix does not know fails the test: add the argument
to ID_ARGUMENTS (and, if managers may use it, to MANAGER_ACTIONS).
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from mailer import create_app
from mailer.extensions import db
from mailer.models import (
    AttemptStatus,
    Client,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingAttempt,
    MailingRun,
    MailingStatus,
    Message,
    Role,
    RunStatus,
    RunTrigger,
    SenderIdentity,
    User,
)
from mailer.services import accounts
from tests.factories import make_user
from tests.support import login

# Blueprints anyone may use; their own tests cover the routes inside that need a login.
PUBLIC_BLUEPRINTS = {"auth", "unsubscribe"}
PUBLIC_ENDPOINTS = {"main.index", "main.set_language"}
# Covered by their own tests, and answering 404 (not a login redirect) to everyone but admins.
HIDDEN_PREFIXES = ("admin", "rq_dashboard")
ID_SKIPPED_BLUEPRINTS = {"static", "bootstrap", "main", *PUBLIC_BLUEPRINTS}

# Which object an id argument names.
ID_ARGUMENTS = {
    "client_id": "client",
    "message_id": "message",
    "mailing_id": "mailing",
    "run_id": "run",
    "delivery_id": "delivery",
    "attempt_id": "attempt",
    "user_id": "user",
    "identity_id": "identity",
}

METHODS = ("GET", "POST")


@dataclass(frozen=True)
class Route:
    endpoint: str
    rule: str
    methods: tuple[str, ...]
    arguments: dict[str, str]  # name -> converter

    @property
    def blueprint(self) -> str:
        return self.endpoint.rpartition(".")[0] if "." in self.endpoint else ""

    @property
    def id_arguments(self) -> list[str]:
        return [name for name, converter in self.arguments.items() if converter == "int"]

    def path(self, values: dict[str, object]) -> str:
        return ARGUMENT.sub(lambda match: str(values[match.group("name")]), self.rule)

    def __str__(self) -> str:
        return f"{self.endpoint} {self.rule}"


ARGUMENT = re.compile(r"<(?:(?P<converter>[a-zA-Z_]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


def all_routes() -> list[Route]:
    """Every route of a freshly built app (the factory does no I/O)."""
    app = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://")
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        arguments = {
            match.group("name"): match.group("converter") or "default" for match in ARGUMENT.finditer(rule.rule)
        }
        methods = tuple(method for method in METHODS if method in rule.methods)
        routes.append(Route(rule.endpoint, rule.rule, methods, arguments))
    return sorted(routes, key=str)


ROUTES = all_routes()


def is_hidden(route: Route) -> bool:
    return route.endpoint.startswith(HIDDEN_PREFIXES)


def is_public(route: Route) -> bool:
    return route.blueprint in PUBLIC_BLUEPRINTS or route.endpoint in PUBLIC_ENDPOINTS


def id_routes() -> list[Route]:
    return [
        route
        for route in ROUTES
        if route.id_arguments and not is_hidden(route) and route.blueprint not in ID_SKIPPED_BLUEPRINTS
    ]


# The world: owner A's objects, and the people who ask for them -------------------------------


@dataclass
class World:
    owner: User
    other: User
    manager: User
    ids: dict[str, int]

    def values(self, route: Route) -> dict[str, object]:
        values = {}
        for name, converter in route.arguments.items():
            values[name] = self.ids[ID_ARGUMENTS[name]] if converter == "int" else "x"
        return values

    def snapshot(self) -> tuple:
        """What a forbidden request must not change in A's objects."""
        db.session.expire_all()
        client = db.session.get(Client, self.ids["client"])
        message = db.session.get(Message, self.ids["message"])
        mailing = db.session.get(Mailing, self.ids["mailing"])
        run = db.session.get(MailingRun, self.ids["run"])
        owner = db.session.get(User, self.ids["user"])
        identity = db.session.get(SenderIdentity, self.ids["identity"])
        return (
            identity and (identity.name, identity.email, identity.reply_to, identity.confirmed_at),
            client and (client.email, client.full_name, client.comment, client.unsubscribed_at),
            message and (message.subject, message.body_text, message.body_html),
            mailing
            and (
                mailing.name,
                mailing.status,
                mailing.disabled_at,
                mailing.start_at,
                mailing.end_at,
                mailing.next_run_at,
                len(mailing.runs),
                [c.id for c in mailing.clients],
            ),
            run and (run.status, run.total_count, run.sent_count),
            db.session.get(Delivery, self.ids["delivery"]) is not None,
            db.session.get(MailingAttempt, self.ids["attempt"]) is not None,
            owner and (owner.is_active, owner.auth_version, owner.email),
        )


def make_objects(owner: User) -> dict[str, int]:
    """A client, a message, a sender identity and a mailing of `owner`, with a run, a delivery and
    an attempt.

    Made again after a request wrongly changed them, hence the address numbered per set.
    """
    now = datetime.now(UTC)
    number = db.session.query(Client).filter_by(owner_id=owner.id).count() + 1
    client = Client(owner=owner, email=f"alice{number}@example.com", full_name="Alice", comment="")
    message = Message(owner=owner, subject="Hello", body_text="Hello {{ client.full_name }}")
    mailing = Mailing(
        owner=owner,
        name="A's mailing",
        message=message,
        clients=[client],
        status=MailingStatus.RUNNING,
        start_at=now - timedelta(hours=1),
        end_at=now + timedelta(days=30),
        next_run_at=None,
    )
    run = MailingRun(
        mailing=mailing,
        trigger=RunTrigger.MANUAL,
        scheduled_for=now,
        status=RunStatus.DONE,
        total_count=1,
        sent_count=0,
        failed_count=1,
    )
    delivery = Delivery(
        run=run,
        client=client,
        email=client.email,
        status=DeliveryStatus.FAILED,
        attempts=1,
        last_code=550,
        last_response="5.1.1 No such user",
    )
    identity = SenderIdentity(owner=owner, name="Alice", email=f"alice{number}@example.com")
    db.session.add_all([client, message, mailing, run, delivery, identity])
    db.session.flush()
    attempt = MailingAttempt(
        mailing=mailing,
        run=run,
        delivery=delivery,
        client=client,
        email=client.email,
        status=AttemptStatus.FAILURE,
        smtp_code=550,
        smtp_response="5.1.1 No such user",
    )
    db.session.add(attempt)
    db.session.commit()
    return {
        "client": client.id,
        "message": message.id,
        "mailing": mailing.id,
        "run": run.id,
        "delivery": delivery.id,
        "attempt": attempt.id,
        "user": owner.id,
        "identity": identity.id,
    }


@pytest.fixture
def world(app):
    owner = make_user("owner-a@example.com")
    other = make_user("owner-b@example.com")
    manager = make_user("manager@example.com", role=Role.MANAGER)
    return World(owner, other, manager, make_objects(owner))


def request(test_client, method: str, path: str):
    if method == "POST":
        return test_client.post(path, data={})
    return test_client.get(path)


def report(failures: list[str]) -> str:
    return "\n".join(["routes that break the access-control matrix:", *failures])


# The tests ---------------------------------------------------------------------------------


def test_every_id_argument_is_known():
    unknown = [
        f"{route} takes <{name}>" for route in id_routes() for name in route.id_arguments if name not in ID_ARGUMENTS
    ]
    assert not unknown, "add these arguments to the access-control matrix:\n" + "\n".join(unknown)


def test_the_matrix_sees_the_routes():
    # A guard against a matrix that silently checks nothing.
    endpoints = {route.endpoint for route in id_routes()}
    assert {"users.block", "users.unblock"} <= endpoints
    assert len(endpoints) >= 3


def test_anonymous_visitors_are_sent_to_login(client):
    failures = []
    for route in ROUTES:
        if is_public(route):
            continue
        path = route.path({name: 1 if converter == "int" else "x" for name, converter in route.arguments.items()})
        for method in route.methods:
            response = request(client, method, path)
            if is_hidden(route):
                expected = "404"
                ok = response.status_code == 404
            else:
                expected = "302 to /auth/login"
                ok = response.status_code == 302 and urlsplit(response.location).path == "/auth/login"
            if not ok:
                failures.append(
                    f"{method} {path} ({route.endpoint}): expected {expected}, got "
                    f"{response.status_code} {response.location or ''}".rstrip()
                )
    assert not failures, report(failures)


def test_another_owner_gets_404_for_every_object(app, client, world):
    login(client, world.other.email)
    failures = []
    for route in id_routes():
        if any(name not in ID_ARGUMENTS for name in route.id_arguments):
            failures.append(f"{route}: unknown id argument")
            continue
        for method in route.methods:
            before = world.snapshot()
            path = route.path(world.values(route))
            response = request(client, method, path)
            if response.status_code != 404:
                failures.append(f"{method} {path} ({route.endpoint}): expected 404, got {response.status_code}")
            if world.snapshot() != before:
                failures.append(f"{method} {path} ({route.endpoint}): changed owner A's data")
                world.ids = make_objects(world.owner)
    assert not failures, report(failures)


def test_the_owner_reaches_their_own_objects(app, client, world):
    """The 404s above come from the ownership rule, not from missing objects."""
    login(client, world.owner.email)
    failures = []
    for route in id_routes():
        # Users pages and the confirmations of the managers' actions are for managers only.
        if route.blueprint == "users" or "GET" not in route.methods or route.endpoint in MANAGER_ACTIONS:
            continue
        path = route.path(world.values(route))
        response = client.get(path)
        if response.status_code != 200:
            failures.append(f"GET {path} ({route.endpoint}): expected 200, got {response.status_code}")
    assert not failures, report(failures)


# What a manager may do to others' objects: endpoint -> (state before, check after).
def set_disabled(world: World, disabled: bool) -> None:
    mailing = db.session.get(Mailing, world.ids["mailing"])
    mailing.disabled_at = datetime.now(UTC) if disabled else None
    mailing.disabled_by_id = world.manager.id if disabled else None
    db.session.commit()


def set_blocked(world: World, blocked: bool) -> None:
    accounts.set_blocked(db.session.get(User, world.ids["user"]), blocked)
    db.session.commit()


def mailing_disabled(world: World) -> bool:
    db.session.expire_all()
    return db.session.get(Mailing, world.ids["mailing"]).is_disabled


def user_blocked(world: World) -> bool:
    db.session.expire_all()
    return not db.session.get(User, world.ids["user"]).is_active


MANAGER_ACTIONS = {
    "mailings.disable": (lambda w: set_disabled(w, False), lambda w: mailing_disabled(w)),
    "mailings.enable": (lambda w: set_disabled(w, True), lambda w: not mailing_disabled(w)),
    "users.block": (lambda w: set_blocked(w, False), lambda w: user_blocked(w)),
    "users.unblock": (lambda w: set_blocked(w, True), lambda w: not user_blocked(w)),
}


def test_a_manager_views_disables_and_blocks_but_changes_nothing_else(app, client, world):
    login(client, world.manager.email)
    failures = []
    for route in id_routes():
        if any(name not in ID_ARGUMENTS for name in route.id_arguments):
            failures.append(f"{route}: unknown id argument")
            continue
        path = route.path(world.values(route))
        # A page that only shows something is a view; a route that also takes a POST is a form
        # (edit, delete...) whose page a manager may not open either.
        is_view = route.methods == ("GET",)
        for method in route.methods:
            if route.endpoint in MANAGER_ACTIONS and method == "POST":
                prepare, succeeded = MANAGER_ACTIONS[route.endpoint]
                prepare(world)
                response = request(client, method, path)
                if response.status_code not in (200, 302, 303) or not succeeded(world):
                    failures.append(
                        f"POST {path} ({route.endpoint}): expected the manager's action to work, "
                        f"got {response.status_code}"
                    )
                set_disabled(world, False)
                set_blocked(world, False)
                continue
            before = world.snapshot()
            response = request(client, method, path)
            if (is_view or route.endpoint in MANAGER_ACTIONS) and method == "GET":
                if response.status_code != 200:
                    failures.append(f"GET {path} ({route.endpoint}): expected 200 (view), got {response.status_code}")
            elif response.status_code not in (403, 404):
                failures.append(f"{method} {path} ({route.endpoint}): expected 403/404, got {response.status_code}")
            if world.snapshot() != before:
                failures.append(f"{method} {path} ({route.endpoint}): changed owner A's data")
                world.ids = make_objects(world.owner)
    assert not failures, report(failures)


def world_values(owner) -> dict[str, object]:
    """Argument values for every route: the ids of a new set of `owner`'s objects, "x" for the
    rest. Called again after requests that may have deleted some of them."""
    # make_objects numbers its addresses by the owner's clients, which the requests may have
    # deleted: the sender addresses of earlier sets step aside.
    for identity in db.session.scalars(select(SenderIdentity).where(SenderIdentity.owner_id == owner.id)):
        identity.email = f"earlier-{identity.id}@example.com"
    db.session.commit()
    ids = make_objects(owner)
    values = {name: ids[kind] for name, kind in ID_ARGUMENTS.items()}
    return DefaultValues(values)


class DefaultValues(dict):
    def __missing__(self, key):
        return "x"

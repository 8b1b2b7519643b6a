"""Every list, detail and report page runs the same number of SQL statements whatever the
number of rows behind it: no statement per row, no loading of a whole list."""

from datetime import timedelta

import pytest
from sqlalchemy import event, insert, select

from mailer.extensions import db
from mailer.models import (
    AttemptStatus,
    Client,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingAttempt,
    MailingRun,
    Message,
    Role,
    RunStatus,
    RunTrigger,
    mailing_clients,
    utcnow,
)
from mailer.services import attempt_stats, runs
from tests.factories import make_user
from tests.support import login

PAGES = [
    ("owner", "/"),
    ("owner", "/clients/"),
    ("owner", "/clients/?q=example&sort=-created"),
    ("owner", "/messages/"),
    ("owner", "/mailings/"),
    ("owner", "/mailings/{mailing}"),
    ("owner", "/mailings/{mailing}?q=example"),
    ("owner", "/runs/{run}"),
    ("owner", "/runs/{run}?status=failed"),
    ("owner", "/runs/{run}/progress"),
    ("owner", "/reports/"),
    ("owner", "/reports/mailings/{mailing}"),
    ("owner", "/reports/mailings/{mailing}/runs/{run}"),
    ("owner", "/reports/mailings/{mailing}/runs/{run}?status=failure"),
    ("owner", "/reports/mailings/{mailing}/runs/{run}?view=deliveries"),
    ("owner", "/reports/statistics"),
    ("admin", "/"),
    ("admin", "/users/"),
    ("admin", "/clients/"),
    ("admin", "/mailings/"),
    ("admin", "/reports/statistics"),
    ("admin", "/admin/"),
    ("admin", "/admin/clients/"),
    ("admin", "/admin/mailings/"),
    ("admin", "/admin/runs/"),
    ("admin", "/admin/deliveries/"),
    ("admin", "/admin/attempts/"),
]


class Seeder:
    """An owner with a mailing to all their clients and one run over them, grown on demand."""

    def __init__(self, owner):
        self.owner = owner
        message = Message(owner_id=owner.id, subject="Hello {{ name }}", body_text="Hi")
        now = utcnow()
        self.mailing = Mailing(
            owner_id=owner.id,
            name="News",
            message=message,
            start_at=now - timedelta(days=1),
            end_at=now + timedelta(days=30),
        )
        db.session.add(self.mailing)
        db.session.flush()
        self.run = MailingRun(
            mailing_id=self.mailing.id,
            trigger=RunTrigger.MANUAL,
            scheduled_for=now,
            status=RunStatus.DONE,
            started_at=now,
            finished_at=now,
        )
        db.session.add(self.run)
        db.session.commit()
        self.count = 0

    def grow(self, count: int) -> None:
        now = utcnow()
        numbers = range(self.count, self.count + count)
        db.session.execute(
            insert(Client),
            [
                {"owner_id": self.owner.id, "email": f"c{n}@example.com", "full_name": f"Client {n}", "comment": ""}
                for n in numbers
            ],
        )
        ids = list(
            db.session.scalars(select(Client.id).where(Client.email.in_([f"c{n}@example.com" for n in numbers])))
        )
        db.session.execute(insert(mailing_clients), [{"mailing_id": self.mailing.id, "client_id": i} for i in ids])
        db.session.execute(
            insert(Delivery),
            [
                {
                    "run_id": self.run.id,
                    "client_id": i,
                    "email": f"c{i}@example.com",
                    "attempts": 1,
                    "status": DeliveryStatus.FAILED if i % 3 == 0 else DeliveryStatus.SENT,
                }
                for i in ids
            ],
        )
        rows = db.session.execute(
            select(Delivery.id, Delivery.client_id, Delivery.email, Delivery.status).where(Delivery.client_id.in_(ids))
        ).all()
        results = [
            (now, AttemptStatus.FAILURE if row.status == DeliveryStatus.FAILED else AttemptStatus.SUCCESS)
            for row in rows
        ]
        db.session.execute(
            insert(MailingAttempt),
            [
                {
                    "mailing_id": self.mailing.id,
                    "run_id": self.run.id,
                    "delivery_id": row.id,
                    "client_id": row.client_id,
                    "email": row.email,
                    "attempted_at": at,
                    "status": status,
                }
                for row, (at, status) in zip(rows, results, strict=True)
            ],
        )
        attempt_stats.add(self.mailing.id, results, [at for at, status in results if status == AttemptStatus.SUCCESS])
        runs.update_counters(self.run.id)
        db.session.execute(Mailing.__table__.update().values(client_count=self.count + count))
        db.session.commit()
        self.count += count


def statements_per_page(app, browsers, seeder) -> dict[str, int]:
    counted = []
    listener = lambda *args: counted.append(1)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        found = {}
        for who, path in PAGES:
            url = path.format(mailing=seeder.mailing.id, run=seeder.run.id)
            browsers[who].get(url)  # the first view fills the caches
            db.session.remove()  # each request starts with an empty session, as in production
            counted.clear()
            response = browsers[who].get(url)
            assert response.status_code == 200, url
            found[f"{who} {url}"] = len(counted)
        return found
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


@pytest.fixture
def browsers(app):
    owner = make_user("owner@example.com")
    make_user("admin@example.com", role=Role.ADMIN)
    found = {}
    for who in ("owner", "admin"):
        found[who] = app.test_client()
        login(found[who], f"{who}@example.com")
    found["seeder"] = Seeder(owner)
    return found


def test_each_page_runs_the_same_statements_for_160_or_400_rows(app, browsers):
    """Both sizes fill more than a page of every list (a list that fits on its first page
    skips its count)."""
    seeder = browsers["seeder"]
    seeder.grow(160)
    smaller = statements_per_page(app, browsers, seeder)
    seeder.grow(240)
    larger = statements_per_page(app, browsers, seeder)
    assert larger == smaller
    # And few of them: a page is a handful of statements, never one per row.
    assert max(smaller.values()) <= 16, smaller

"""A small factory of mailings, runs, deliveries and attempts, written straight to the database
as the sending engine would leave them."""
from datetime import UTC, datetime, timedelta

import pytest

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
    RunStatus,
    RunTrigger,
    User,
)
from mailer.services import attempt_stats, runs

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


class ReportFactory:
    def mailing(self, owner: User, name: str = "Spring newsletter") -> Mailing:
        message = Message(owner_id=owner.id, subject=f"{name} subject", body_text="Hello {{ name }}")
        mailing = Mailing(owner_id=owner.id, name=name, message=message, start_at=T0, end_at=T0 + timedelta(days=90))
        db.session.add(mailing)
        db.session.commit()
        return mailing

    def run(self, mailing: Mailing, scheduled_for: datetime = T0, *, trigger: RunTrigger = RunTrigger.SCHEDULE,
            status: RunStatus = RunStatus.DONE, duration: timedelta | None = timedelta(seconds=75)) -> MailingRun:
        run = MailingRun(
            mailing_id=mailing.id, trigger=trigger, scheduled_for=scheduled_for, status=status,
            started_at=scheduled_for if duration is not None else None,
            finished_at=scheduled_for + duration if duration is not None and status == RunStatus.DONE else None,
        )
        db.session.add(run)
        db.session.commit()
        return run

    def delivery(self, run: MailingRun, email: str, status: DeliveryStatus = DeliveryStatus.SENT,
                 attempts: list[tuple] = ()) -> Delivery:
        """`attempts`: (time, AttemptStatus, smtp_code, smtp_response, error) in order."""
        mailing = db.session.get(Mailing, run.mailing_id)
        client = db.session.query(Client).filter_by(owner_id=mailing.owner_id, email=email).one_or_none()
        if client is None:
            client = Client(owner_id=mailing.owner_id, email=email, full_name=email.split("@")[0])
            db.session.add(client)
            db.session.flush()
        delivery = Delivery(run_id=run.id, client_id=client.id, email=email, status=status, attempts=len(attempts))
        db.session.add(delivery)
        db.session.flush()
        for at, result, code, response, error in attempts:
            db.session.add(MailingAttempt(
                mailing_id=run.mailing_id, run_id=run.id, delivery_id=delivery.id, client_id=client.id, email=email,
                attempted_at=at, status=result, smtp_code=code, smtp_response=response, error=error,
            ))
            delivery.last_code, delivery.last_response = code, response or error
            if result == AttemptStatus.SUCCESS:
                delivery.sent_at = at
        # The run's counters and the statistics' sums, as the engine keeps them with its writes.
        runs.update_counters(run.id)
        attempt_stats.add(run.mailing_id, [(at, result) for at, result, *_ in attempts],
                          [delivery.sent_at] if status == DeliveryStatus.SENT and delivery.sent_at else [])
        db.session.commit()
        return delivery

    def sent(self, run: MailingRun, email: str, at: datetime) -> Delivery:
        return self.delivery(run, email, DeliveryStatus.SENT,
                             [(at, AttemptStatus.SUCCESS, 250, "2.0.0 Accepted", None)])

    def failed(self, run: MailingRun, email: str, at: datetime, code: int = 550,
               response: str = "5.1.1 No such user") -> Delivery:
        return self.delivery(run, email, DeliveryStatus.FAILED,
                             [(at, AttemptStatus.FAILURE, code, response, None)])


@pytest.fixture
def make(app):
    return ReportFactory()

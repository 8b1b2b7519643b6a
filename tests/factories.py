"""The objects of a test, written straight to the database: users, clients, messages, mailings,
runs, deliveries, SMTP servers and sender addresses. Each function commits and returns what it
made; the owner is always passed in."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

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
    Repeat,
    RunStatus,
    RunTrigger,
    SenderIdentity,
    SmtpServer,
    User,
    mailing_clients,
    utcnow,
)
from mailer.services import accounts, attempt_stats, runs, schedule, secrets

PASSWORD = "correct horse battery"


def make_user(email: str = "owner@example.com", role: str | None = None, **fields) -> User:
    """A confirmed, active user with PASSWORD; `role` "manager" or "admin"."""
    user = accounts.create_user(email, PASSWORD, role=role)
    for name, value in fields.items():
        setattr(user, name, value)
    db.session.commit()
    return user


def add_client(
    owner: User, email: str = "ada@example.com", full_name: str = "Ada Lovelace", comment: str = ""
) -> Client:
    client = Client(owner_id=owner.id, email=email, full_name=full_name, comment=comment)
    db.session.add(client)
    db.session.commit()
    return client


def add_clients(owner: User, count: int = 3, prefix: str = "client", name: str | None = None) -> list[Client]:
    """`count` clients <prefix><n>@example.com called "<name> <n>" (name: the prefix, titled),
    inserted in one statement: a test may ask for thousands."""
    if count == 0:
        return []
    name = name or prefix.title()
    db.session.execute(
        insert(Client),
        [
            {
                "owner_id": owner.id,
                "email": f"{prefix}{number}@example.com",
                "full_name": f"{name} {number}",
                "comment": "",
            }
            for number in range(count)
        ],
    )
    db.session.commit()
    return list(
        db.session.scalars(
            select(Client)
            .where(Client.owner_id == owner.id, Client.email.like(f"{prefix}%@example.com"))
            .order_by(Client.id)
        )
    )


def add_message(
    owner: User,
    subject: str = "Hello {{ name }}",
    body_text: str = "Dear {{ name }},\nnews.",
    body_html: str | None = None,
) -> Message:
    message = Message(owner_id=owner.id, subject=subject, body_text=body_text, body_html=body_html)
    db.session.add(message)
    db.session.commit()
    return message


def add_mailing(
    owner: User, message: Message, clients, name: str = "Newsletter", start_at=None, end_at=None, repeat=Repeat.NONE
) -> Mailing:
    """A mailing of `message` to `clients`, scheduled like the mailings form does it (by
    default from tomorrow, for a week)."""
    now = utcnow()
    mailing = Mailing(
        owner=owner,
        name=name,
        message_id=message.id,
        start_at=start_at or now + timedelta(days=1),
        end_at=end_at or now + timedelta(days=8),
        repeat=repeat,
    )
    db.session.add(mailing)
    db.session.flush()
    client_ids = [client.id for client in clients]
    if client_ids:
        db.session.execute(
            insert(mailing_clients), [{"mailing_id": mailing.id, "client_id": client_id} for client_id in client_ids]
        )
    mailing.client_count = len(client_ids)  # as the mailings service keeps it
    schedule.reset_schedule(mailing, now)
    db.session.commit()
    return mailing


def make_mailing(
    owner: User,
    clients: int = 3,
    *,
    start_at=None,
    end_at=None,
    repeat=Repeat.NONE,
    subject="Hello {{ name }}",
    body="Dear {{ name }}, news for {{ email }}.",
) -> Mailing:
    """A mailing due now (unless `start_at` says otherwise) to `clients` new clients, with its
    own message: what the sending engine picks up."""
    message = add_message(owner, subject=subject, body_text=body)
    start_at = start_at or utcnow()
    mailing = add_mailing(
        owner, message, [], start_at=start_at, end_at=end_at or start_at + timedelta(days=30), repeat=repeat
    )
    recipients = add_clients(owner, clients, prefix=f"m{mailing.id}-", name="Client")
    if recipients:
        db.session.execute(
            insert(mailing_clients), [{"mailing_id": mailing.id, "client_id": client.id} for client in recipients]
        )
        mailing.client_count = len(recipients)
        db.session.commit()
    return mailing


def add_run(mailing: Mailing, status=RunStatus.DONE, trigger=RunTrigger.MANUAL) -> MailingRun:
    run = MailingRun(mailing_id=mailing.id, trigger=trigger, status=status, scheduled_for=utcnow())
    db.session.add(run)
    db.session.commit()
    return run


def add_identity(
    owner: User, email="news@alice.example", name="Alice", reply_to=None, confirmed=True
) -> SenderIdentity:
    identity = SenderIdentity(
        owner_id=owner.id, name=name, email=email, reply_to=reply_to, confirmed_at=utcnow() if confirmed else None
    )
    db.session.add(identity)
    db.session.commit()
    return identity


def add_server(name="Relay", host="127.0.0.1", port=2525, is_default=False, password=None, **fields) -> SmtpServer:
    server = SmtpServer(
        name=name,
        host=host,
        port=port,
        security=fields.pop("security", "none"),
        is_default=is_default,
        password_encrypted=secrets.encrypt(password) if password else None,
        **fields,
    )
    db.session.add(server)
    db.session.commit()
    return server


def mailing_form(
    message: Message,
    clients,
    name="Newsletter",
    start="2030-01-15T09:00",
    end="2030-02-15T09:00",
    repeat="none",
    **extra,
) -> dict:
    """What the mailing form posts for these choices."""
    return {
        "name": name,
        "message": str(message.id),
        "clients": [str(c.id) for c in clients],
        "start_at": start,
        "end_at": end,
        "repeat": repeat,
        **extra,
    }


# Finished sending, as the engine leaves it: for the reports ---------------------------------

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


class ReportFactory:
    """Mailings, runs, deliveries and attempts written as the sending engine would leave them."""

    def mailing(self, owner: User, name: str = "Spring newsletter") -> Mailing:
        message = Message(owner_id=owner.id, subject=f"{name} subject", body_text="Hello {{ name }}")
        mailing = Mailing(owner_id=owner.id, name=name, message=message, start_at=T0, end_at=T0 + timedelta(days=90))
        db.session.add(mailing)
        db.session.commit()
        return mailing

    def run(
        self,
        mailing: Mailing,
        scheduled_for: datetime = T0,
        *,
        trigger: RunTrigger = RunTrigger.SCHEDULE,
        status: RunStatus = RunStatus.DONE,
        duration: timedelta | None = timedelta(seconds=75),
    ) -> MailingRun:
        run = MailingRun(
            mailing_id=mailing.id,
            trigger=trigger,
            scheduled_for=scheduled_for,
            status=status,
            started_at=scheduled_for if duration is not None else None,
            finished_at=scheduled_for + duration if duration is not None and status == RunStatus.DONE else None,
        )
        db.session.add(run)
        db.session.commit()
        return run

    def delivery(
        self, run: MailingRun, email: str, status: DeliveryStatus = DeliveryStatus.SENT, attempts: list[tuple] = ()
    ) -> Delivery:
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
            db.session.add(
                MailingAttempt(
                    mailing_id=run.mailing_id,
                    run_id=run.id,
                    delivery_id=delivery.id,
                    client_id=client.id,
                    email=email,
                    attempted_at=at,
                    status=result,
                    smtp_code=code,
                    smtp_response=response,
                    error=error,
                )
            )
            delivery.last_code, delivery.last_response = code, response or error
            if result == AttemptStatus.SUCCESS:
                delivery.sent_at = at
        # The run's counters and the statistics' sums, as the engine keeps them with its writes.
        runs.update_counters(run.id)
        attempt_stats.add(
            run.mailing_id,
            [(at, result) for at, result, *_ in attempts],
            [delivery.sent_at] if status == DeliveryStatus.SENT and delivery.sent_at else [],
        )
        db.session.commit()
        return delivery

    def retried_and_refused(self, run: MailingRun) -> None:
        """retry@example.com sent at T0 + 1 min after a 451 at T0; down@example.com failed at
        T0 + 2 min, its server refusing the connection."""
        self.delivery(
            run,
            "retry@example.com",
            DeliveryStatus.SENT,
            [
                (T0, AttemptStatus.FAILURE, 451, "4.3.0 Try again later", None),
                (T0 + timedelta(minutes=1), AttemptStatus.SUCCESS, 250, "2.0.0 Accepted", None),
            ],
        )
        self.delivery(
            run,
            "down@example.com",
            DeliveryStatus.FAILED,
            [
                (T0 + timedelta(minutes=2), AttemptStatus.FAILURE, None, None, "Connection refused"),
            ],
        )

    def sent(self, run: MailingRun, email: str, at: datetime) -> Delivery:
        return self.delivery(
            run, email, DeliveryStatus.SENT, [(at, AttemptStatus.SUCCESS, 250, "2.0.0 Accepted", None)]
        )

    def failed(
        self, run: MailingRun, email: str, at: datetime, code: int = 550, response: str = "5.1.1 No such user"
    ) -> Delivery:
        return self.delivery(run, email, DeliveryStatus.FAILED, [(at, AttemptStatus.FAILURE, code, response, None)])

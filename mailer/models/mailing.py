from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint, event, func, select, text
from sqlalchemy.orm import Mapped, Session, attributes, mapped_column, relationship

from mailer.extensions import db
from mailer.models.base import UTCDateTime, enum_column, utcnow
from mailer.models.client import Client
from mailer.models.message import Message
from mailer.models.sender import SenderIdentity, SmtpServer
from mailer.models.user import User


class Repeat(StrEnum):
    NONE = "none"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class MailingStatus(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    FINISHED = "finished"


class RunTrigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    RETRY = "retry"
    # The clients a cancelled or paused-then-cancelled run never reached.
    REST = "rest"


class RunStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    # Stopped by its owner, an admin or a manager's Disable; workers leave it alone until resumed.
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"


# An active run: waiting for a worker or being sent. Workers take messages only from these.
ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.SENDING)
# A run that is not over: active, or paused and waiting to be resumed or cancelled. A mailing has
# at most one such run, so that nobody is sent the same mailing twice at once.
UNFINISHED_RUN_STATUSES = (*ACTIVE_RUN_STATUSES, RunStatus.PAUSED)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class AttemptStatus(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    # The try was interrupted (a crash, a lost connection after the message was handed over, a
    # database outage): the message may or may not have been delivered.
    UNKNOWN = "unknown"


mailing_clients = Table(
    "mailing_clients",
    db.metadata,
    Column("mailing_id", ForeignKey("mailings.id", ondelete="CASCADE"), primary_key=True),
    Column("client_id", ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Mailing(db.Model):
    """A message sent to a set of clients on a schedule."""

    __tablename__ = "mailings"
    __table_args__ = (
        Index("ix_mailings_due", "next_run_at", "status"),
        # The list's default sort: the owner's mailings, latest start first.
        Index("ix_mailings_owner_start", "owner_id", "start_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="RESTRICT"), index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    repeat: Mapped[Repeat] = mapped_column(enum_column(Repeat), default=Repeat.NONE)
    status: Mapped[MailingStatus] = mapped_column(enum_column(MailingStatus), default=MailingStatus.CREATED)
    # When the scheduler should next create a run; None once nothing is left to send.
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by a manager: a disabled mailing is never sent, and its owner cannot re-enable it.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Why the manager disabled it, shown to the owner; empty when no reason was given.
    disabled_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Both optional: None means the owner's first confirmed identity and the default server.
    sender_identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("sender_identities.id", ondelete="SET NULL"), index=True
    )
    smtp_server_id: Mapped[int | None] = mapped_column(ForeignKey("smtp_servers.id", ondelete="SET NULL"), index=True)
    # How many clients the mailing has (rows of mailing_clients), kept by every change of the
    # list, so that pages show it without counting a list of hundreds of thousands.
    client_count: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    owner: Mapped[User] = relationship(foreign_keys=[owner_id])
    disabled_by: Mapped[User | None] = relationship(foreign_keys=[disabled_by_id])
    message: Mapped[Message] = relationship()
    sender_identity: Mapped[SenderIdentity | None] = relationship()
    smtp_server: Mapped[SmtpServer | None] = relationship()
    clients: Mapped[list[Client]] = relationship(secondary=mailing_clients, order_by=Client.email)
    runs: Mapped[list["MailingRun"]] = relationship(
        back_populates="mailing", order_by="MailingRun.id.desc()", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Mailing {self.id} {self.name!r}>"

    def __str__(self) -> str:
        return self.name

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None


@event.listens_for(Session, "after_flush")
def count_changed_client_lists(session, flush_context) -> None:
    """Keep `client_count` when a mailing's `clients` collection was changed through the ORM
    (the admin panel, the tests); the mailings service writes the link table itself."""
    changed = [
        mailing
        for mailing in (*session.new, *session.dirty)
        if isinstance(mailing, Mailing) and attributes.get_history(mailing, "clients").has_changes()
    ]
    for mailing in changed:
        count = session.execute(
            select(func.count()).select_from(mailing_clients).where(mailing_clients.c.mailing_id == mailing.id)
        ).scalar_one()
        session.execute(
            Mailing.__table__.update().where(Mailing.__table__.c.id == mailing.id).values(client_count=count)
        )
        attributes.set_committed_value(mailing, "client_count", count)


class MailingRun(db.Model):
    """One send of a mailing to its clients."""

    __tablename__ = "mailing_runs"
    # A schedule can never produce the same run twice, whoever dispatches it.
    __table_args__ = (
        UniqueConstraint("mailing_id", "scheduled_for"),
        # A mailing's runs, newest first.
        Index("ix_mailing_runs_mailing", "mailing_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"))
    trigger: Mapped[RunTrigger] = mapped_column(enum_column(RunTrigger))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[RunStatus] = mapped_column(enum_column(RunStatus), default=RunStatus.QUEUED, index=True)
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("mailing_runs.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    total_count: Mapped[int] = mapped_column(default=0)
    sent_count: Mapped[int] = mapped_column(default=0)
    failed_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)
    # Tries whose outcome is unknown (see AttemptStatus.UNKNOWN): those clients may have got two copies.
    unknown_count: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    mailing: Mapped[Mailing] = relationship(back_populates="runs")
    retry_of: Mapped["MailingRun | None"] = relationship(remote_side=[id])
    created_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<MailingRun {self.id} of mailing {self.mailing_id} {self.status}>"

    @property
    def pending_count(self) -> int:
        return max(self.total_count - self.sent_count - self.failed_count - self.skipped_count, 0)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    @property
    def is_paused(self) -> bool:
        return self.status == RunStatus.PAUSED


def _where(condition: str) -> dict:
    """The options of a partial index, on PostgreSQL and SQLite alike."""
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


class Delivery(db.Model):
    """The state of one client in one run; what makes sending crash-safe."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("run_id", "client_id"),
        # A run's deliveries of one status (or all, by status) in id order, a page at a time.
        Index("ix_deliveries_run_status", "run_id", "status", "id"),
        # Partial indexes stay small however large a run is: the claim reads a run's pending
        # deliveries in id order, the reconciler the expired leases, the heartbeat its claims.
        Index("ix_deliveries_pending", "run_id", "id", **_where("status = 'pending'")),
        Index("ix_deliveries_sending", "claimed_at", **_where("status = 'sending'")),
        Index("ix_deliveries_claim_token", "claim_token", **_where("claim_token IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("mailing_runs.id", ondelete="CASCADE"))
    # Kept when the client is deleted; the address below keeps the record readable.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[DeliveryStatus] = mapped_column(enum_column(DeliveryStatus), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    # The Message-ID header, stored before the message is handed to the SMTP server.
    message_id_header: Mapped[str | None] = mapped_column(String(255))
    # A claim is a lease: `claimed_at` is renewed by the live worker that holds the delivery, and
    # `claim_token` names that worker's claim, so only its holder can record the result.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    # The first try; transient failures are retried until SEND_RETRY_WINDOW after it.
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # For a transient failure: not to be tried again before this time.
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_code: Mapped[int | None] = mapped_column()
    last_response: Mapped[str | None] = mapped_column(Text)

    run: Mapped[MailingRun] = relationship()
    client: Mapped[Client | None] = relationship()

    def __repr__(self) -> str:
        return f"<Delivery {self.id} run={self.run_id} {self.email} {self.status}>"


class MailingAttempt(db.Model):
    """The log: one row per SMTP attempt, with the server's answer."""

    __tablename__ = "mailing_attempts"
    __table_args__ = (
        Index("ix_mailing_attempts_mailing_time", "mailing_id", "attempted_at"),
        # A run's attempts, newest first, a page at a time.
        Index("ix_mailing_attempts_run_time", "run_id", "attempted_at", "id"),
        # The same for the few tries that did not succeed, which a report filters on.
        Index("ix_mailing_attempts_run_problems", "run_id", "attempted_at", "id", **_where("status <> 'success'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("mailing_runs.id", ondelete="CASCADE"))
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[AttemptStatus] = mapped_column(enum_column(AttemptStatus))
    smtp_code: Mapped[int | None] = mapped_column()
    smtp_response: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)

    mailing: Mapped[Mailing] = relationship()
    run: Mapped[MailingRun] = relationship()
    delivery: Mapped[Delivery] = relationship()
    client: Mapped[Client | None] = relationship()

    def __repr__(self) -> str:
        return f"<MailingAttempt {self.id} {self.email} {self.status}>"


class AttemptStat(db.Model):
    """The attempt log summed per mailing and quarter of an hour (UTC), written with the attempts.

    Statistics read these rows instead of the log: a year of a daily mailing is a few hundred of
    them. A quarter of an hour because every time zone's offset, and every daylight-saving
    change, is a multiple of it, so the days of any viewer's zone are made of whole slots.
    """

    __tablename__ = "attempt_stats"
    __table_args__ = (Index("ix_attempt_stats_slot", "slot"),)

    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"), primary_key=True)
    # The start of the quarter of an hour.
    slot: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    attempts: Mapped[int] = mapped_column(default=0)
    successes: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)
    # Deliveries accepted (each counted once, whatever number of attempts it took).
    sent: Mapped[int] = mapped_column(default=0)

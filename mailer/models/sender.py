"""Where mailings leave from: SMTP servers (managed by admins) and owners' sender identities."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.extensions import db
from mailer.models.base import UTCDateTime, enum_column, utcnow
from mailer.models.user import User


class Security(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class SmtpServer(db.Model):
    """An SMTP relay that mailings may leave through. Secrets are stored encrypted (see
    mailer.services.secrets) and are never shown back."""

    __tablename__ = "smtp_servers"
    # At most one default server: a partial unique index over the rows marked default.
    __table_args__ = (
        Index(
            "uq_smtp_servers_one_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(default=587)
    security: Mapped[Security] = mapped_column(enum_column(Security), default=Security.STARTTLS)
    username: Mapped[str | None] = mapped_column(String(255))
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    # limits notation, several joined by ";": "50 per second; 10000 per hour". Empty: no limit.
    rate_limit: Mapped[str | None] = mapped_column(String(255))
    max_connections: Mapped[int | None] = mapped_column()
    is_default: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    dkim_selector: Mapped[str | None] = mapped_column(String(63))
    dkim_domain: Mapped[str | None] = mapped_column(String(253))
    dkim_private_key_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())

    def __repr__(self) -> str:
        return f"<SmtpServer {self.id} {self.name!r}>"

    def __str__(self) -> str:
        return self.name

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    @property
    def has_dkim(self) -> bool:
        return bool(self.dkim_selector and self.dkim_domain and self.dkim_private_key_encrypted)


class SenderIdentity(db.Model):
    """A From address of one owner; usable once the owner followed the link sent to it."""

    __tablename__ = "sender_identities"
    __table_args__ = (UniqueConstraint("owner_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    email: Mapped[str] = mapped_column(String(254))
    reply_to: Mapped[str | None] = mapped_column(String(254))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())

    owner: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<SenderIdentity {self.id} {self.email}>"

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None

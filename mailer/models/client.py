from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.extensions import db
from mailer.models.base import UTCDateTime, utcnow
from mailer.models.user import User


class Client(db.Model):
    """A recipient, owned by one user. The same address may belong to several owners."""

    __tablename__ = "clients"
    __table_args__ = (
        # The list's sorts, each ending with the id that breaks ties (the e-mail sort uses the
        # unique index: an address is unique per owner).
        UniqueConstraint("owner_id", "email"),
        Index("ix_clients_owner_name", "owner_id", "full_name", "id"),
        Index("ix_clients_owner_created", "owner_id", "created_at", "id"),
        # Substring search (ILIKE '%...%') of addresses and names on PostgreSQL, within an
        # owner's clients or everyone's: the owner and the trigrams (pg_trgm) in one GIN index
        # (btree_gin).
        *(
            Index(
                f"ix_clients_owner_{column}_trgm",
                "owner_id",
                column,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            ).ddl_if(dialect="postgresql")
            for column in ("email", "full_name")
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    full_name: Mapped[str] = mapped_column(String(120))
    comment: Mapped[str] = mapped_column(Text, default="")
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    owner: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<Client {self.email}>"

    def __str__(self) -> str:
        return f"{self.full_name} <{self.email}>"

    @property
    def is_unsubscribed(self) -> bool:
        return self.unsubscribed_at is not None

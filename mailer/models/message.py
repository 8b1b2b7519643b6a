from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.extensions import db
from mailer.models.base import UTCDateTime, utcnow
from mailer.models.user import User


class Message(db.Model):
    """The content of a mailing: a subject, a plain-text body and an optional HTML body."""

    __tablename__ = "messages"
    # The list's default sort: the owner's messages, last changed first.
    __table_args__ = (Index("ix_messages_owner_updated", "owner_id", "updated_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str] = mapped_column(Text)
    # Sanitised with nh3 before it is stored.
    body_html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    owner: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<Message {self.id} {self.subject!r}>"

    def __str__(self) -> str:
        return self.subject

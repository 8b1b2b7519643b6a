from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, func, true
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from mailer.extensions import db
from mailer.models.base import UTCDateTime, utcnow


def hash_password(password: str) -> str:
    """A salted hash of `password` made with the configured method (PASSWORD_HASH_METHOD)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


user_roles = Table(
    "user_roles",
    db.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)


class Role(db.Model):
    __tablename__ = "roles"

    MANAGER = "manager"
    ADMIN = "admin"
    ALL = (MANAGER, ADMIN)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")

    def __repr__(self) -> str:
        return f"<Role {self.name}>"

    def __str__(self) -> str:
        return self.name


class User(UserMixin, db.Model):
    __tablename__ = "users"
    # The users page: newest first.
    __table_args__ = (Index("ix_users_created", "created_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased, so uniqueness is case-insensitive on every database.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(120), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The interface's language ("en", "ru"); None follows the browser.
    locale: Mapped[str | None] = mapped_column(String(8))
    avatar_filename: Mapped[str | None] = mapped_column(String(64))
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # False means blocked: cannot log in, open sessions end, mailings are not sent.
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why a manager blocked the account, shown to its owner; empty when no reason was given.
    blocked_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Bumped when the password changes or the user is blocked: ends every other session.
    auth_version: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="selectin")

    def __repr__(self) -> str:
        return f"<User {self.email}>"

    def __str__(self) -> str:
        return self.email

    # Flask-Login: the session holds the id and the auth version, so a password change or a
    # block invalidates every session that was opened before it.
    def get_id(self) -> str:
        return f"{self.id}:{self.auth_version}"

    def set_password(self, password: str) -> None:
        self.password_hash = hash_password(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_confirmed(self) -> bool:
        return self.email_confirmed_at is not None

    @property
    def role_names(self) -> set[str]:
        return {role.name for role in self.roles}

    def has_role(self, name: str) -> bool:
        return name in self.role_names

    @property
    def is_admin(self) -> bool:
        return self.has_role(Role.ADMIN)

    @property
    def is_manager(self) -> bool:
        """Managers and admins oversee everyone's data."""
        return bool(self.role_names & {Role.MANAGER, Role.ADMIN})

    @property
    def display_name(self) -> str:
        return self.full_name or self.email

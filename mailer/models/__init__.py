"""All models, importable from one place (Alembic and Flask-Admin need them registered)."""

from mailer.models.base import UTCDateTime, utcnow
from mailer.models.client import Client
from mailer.models.mailing import (
    ACTIVE_RUN_STATUSES,
    UNFINISHED_RUN_STATUSES,
    AttemptStat,
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingAttempt,
    MailingRun,
    MailingStatus,
    Repeat,
    RunStatus,
    RunTrigger,
    mailing_clients,
)
from mailer.models.message import Message
from mailer.models.sender import Security, SenderIdentity, SmtpServer
from mailer.models.user import Role, User, user_roles

__all__ = [
    "AttemptStat",
    "AttemptStatus",
    "Client",
    "Delivery",
    "DeliveryStatus",
    "Mailing",
    "MailingAttempt",
    "MailingRun",
    "MailingStatus",
    "Message",
    "Repeat",
    "Role",
    "RunStatus",
    "RunTrigger",
    "Security",
    "SenderIdentity",
    "SmtpServer",
    "ACTIVE_RUN_STATUSES",
    "UNFINISHED_RUN_STATUSES",
    "UTCDateTime",
    "User",
    "mailing_clients",
    "user_roles",
    "utcnow",
]

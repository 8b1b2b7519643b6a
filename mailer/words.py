"""The words shown for the values of the models' enumerations (statuses, repeats, triggers),
in the viewer's language: `{{ run.status|word }}` in templates, `word(value)` in Python."""
from enum import Enum

from flask_babel import lazy_gettext as _l

from mailer.models import AttemptStatus, DeliveryStatus, MailingStatus, Repeat, RunStatus, RunTrigger, Security

# Keyed by (enumeration, value): the members are strings, and "none" or "sending" mean different
# things in different enumerations.
WORDS = {
    (Repeat, Repeat.NONE): _l("once"),
    (Repeat, Repeat.DAILY): _l("daily"),
    (Repeat, Repeat.WEEKLY): _l("weekly"),
    (Repeat, Repeat.MONTHLY): _l("monthly"),
    (MailingStatus, MailingStatus.CREATED): _l("Created"),
    (MailingStatus, MailingStatus.RUNNING): _l("Active"),
    (MailingStatus, MailingStatus.FINISHED): _l("Finished"),
    (RunTrigger, RunTrigger.SCHEDULE): _l("Scheduled"),
    (RunTrigger, RunTrigger.MANUAL): _l("Manual"),
    (RunTrigger, RunTrigger.RETRY): _l("Retry"),
    (RunTrigger, RunTrigger.REST): _l("To the rest"),
    (RunStatus, RunStatus.QUEUED): _l("Queued"),
    (RunStatus, RunStatus.SENDING): _l("Sending"),
    (RunStatus, RunStatus.PAUSED): _l("Paused"),
    (RunStatus, RunStatus.DONE): _l("Done"),
    (RunStatus, RunStatus.CANCELLED): _l("Cancelled"),
    (DeliveryStatus, DeliveryStatus.PENDING): _l("Pending"),
    (DeliveryStatus, DeliveryStatus.SENDING): _l("Being sent"),
    (DeliveryStatus, DeliveryStatus.SENT): _l("Sent"),
    (DeliveryStatus, DeliveryStatus.FAILED): _l("Failed"),
    (DeliveryStatus, DeliveryStatus.SKIPPED): _l("Skipped"),
    (AttemptStatus, AttemptStatus.SUCCESS): _l("Success"),
    (AttemptStatus, AttemptStatus.FAILURE): _l("Failure"),
    (AttemptStatus, AttemptStatus.UNKNOWN): _l("Unknown"),
    (Security, Security.NONE): _l("none"),
    (Security, Security.STARTTLS): _l("STARTTLS"),
    (Security, Security.TLS): _l("TLS"),
}


def word(value: Enum) -> str:
    """The word for an enumeration member; its own value if it has none."""
    return str(WORDS.get((type(value), value), value.value))

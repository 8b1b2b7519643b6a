"""The words shown for the values of the models' enumerations (statuses, repeats, triggers),
in the viewer's language: `{{ run.status|word }}` in templates, `word(value)` in Python."""

from enum import Enum

from mailer.i18n import lazy_ptext as lazy_pgettext
from mailer.i18n import lazy_text as _l
from mailer.models import AttemptStatus, DeliveryStatus, MailingStatus, Repeat, RunStatus, RunTrigger, Security

# Keyed by (enumeration, value): the members are strings, and "none" or "sending" mean different
# things in different enumerations; the context tells translators which (a mailing's "Active" and a
# run's agree with different nouns in Russian).
WORDS = {
    (Repeat, Repeat.NONE): lazy_pgettext("repeat", "once"),
    (Repeat, Repeat.DAILY): lazy_pgettext("repeat", "daily"),
    (Repeat, Repeat.WEEKLY): lazy_pgettext("repeat", "weekly"),
    (Repeat, Repeat.MONTHLY): lazy_pgettext("repeat", "monthly"),
    (MailingStatus, MailingStatus.CREATED): lazy_pgettext("mailing status", "Scheduled"),
    (MailingStatus, MailingStatus.RUNNING): lazy_pgettext("mailing status", "Active"),
    (MailingStatus, MailingStatus.FINISHED): lazy_pgettext("mailing status", "Finished"),
    (RunTrigger, RunTrigger.SCHEDULE): lazy_pgettext("run trigger", "Schedule"),
    (RunTrigger, RunTrigger.MANUAL): lazy_pgettext("run trigger", "Manual"),
    (RunTrigger, RunTrigger.RETRY): lazy_pgettext("run trigger", "Retry"),
    (RunTrigger, RunTrigger.REST): lazy_pgettext("run trigger", "Rest"),
    (RunStatus, RunStatus.QUEUED): lazy_pgettext("run status", "Queued"),
    (RunStatus, RunStatus.SENDING): lazy_pgettext("run status", "Sending"),
    (RunStatus, RunStatus.PAUSED): lazy_pgettext("run status", "Paused"),
    (RunStatus, RunStatus.DONE): lazy_pgettext("run status", "Done"),
    (RunStatus, RunStatus.CANCELLED): lazy_pgettext("run status", "Cancelled"),
    (DeliveryStatus, DeliveryStatus.PENDING): lazy_pgettext("delivery status", "Pending"),
    (DeliveryStatus, DeliveryStatus.SENDING): lazy_pgettext("delivery status", "Being sent"),
    (DeliveryStatus, DeliveryStatus.SENT): lazy_pgettext("delivery status", "Sent"),
    (DeliveryStatus, DeliveryStatus.FAILED): lazy_pgettext("delivery status", "Failed"),
    (DeliveryStatus, DeliveryStatus.SKIPPED): lazy_pgettext("delivery status", "Skipped"),
    (AttemptStatus, AttemptStatus.SUCCESS): lazy_pgettext("attempt status", "Success"),
    (AttemptStatus, AttemptStatus.FAILURE): lazy_pgettext("attempt status", "Failure"),
    (AttemptStatus, AttemptStatus.UNKNOWN): lazy_pgettext("attempt status", "Unknown"),
    (Security, Security.NONE): lazy_pgettext("security", "none"),
    (Security, Security.STARTTLS): lazy_pgettext("security", "STARTTLS"),
    (Security, Security.TLS): lazy_pgettext("security", "TLS"),
}

# A mailing's one status word and what it means, for its badge, its tooltip and the legend.
# "disabled" is not a MailingStatus but a manager's switch that outranks it. Lazy, so that each
# page reads them in its own language (a macro file's top-level `set` would be evaluated once,
# when Jinja first imports the file, and keep that request's language for good).
MAILING_STATUS_WORDS = {
    "created": (WORDS[(MailingStatus, MailingStatus.CREATED)], _l("Not sent yet: its first run is due at its start.")),
    "running": (
        WORDS[(MailingStatus, MailingStatus.RUNNING)],
        _l("Sent at least once: a run is in progress, paused, or another one is scheduled."),
    ),
    "finished": (
        WORDS[(MailingStatus, MailingStatus.FINISHED)],
        _l("Nothing left to send: no run in progress and no further run before its end."),
    ),
    "disabled": (
        lazy_pgettext("mailing status", "Disabled"),
        _l("A manager disabled it: nothing is sent until a manager enables it again."),
    ),
}


def delivery_status_word(value: str) -> str:
    """The word for a delivery status given by its value (the run page's filter)."""
    return word(DeliveryStatus(value))


def word(value: Enum) -> str:
    """The word for an enumeration member (lazy: a form's choices made at import read it in each
    request's language); its own value if it has none."""
    return WORDS.get((type(value), value), value.value)

"""The attempt log summed per mailing and quarter of an hour (`AttemptStat`), written in the
same transaction as the attempts, so that statistics never read the log itself.

On PostgreSQL the sending engine adds to these rows inside its one results statement
(`sending.RESULTS_ON_POSTGRESQL`); `add` does the same for SQLite and for records written by
other means.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy.dialects import postgresql, sqlite

from mailer.database import is_postgresql
from mailer.extensions import db
from mailer.models import AttemptStat, AttemptStatus

SLOT = timedelta(minutes=15)
SLOT_SECONDS = int(SLOT.total_seconds())
# The slot of a time in SQL: the start of its quarter of an hour.
SLOT_ON_POSTGRESQL = "to_timestamp(floor(extract(epoch FROM {0}) / 900) * 900)"


def slot_of(moment: datetime) -> datetime:
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % SLOT_SECONDS, UTC)


def add(mailing_id: int, attempts: Iterable[tuple[datetime, AttemptStatus]], sent: Iterable[datetime]) -> None:
    """Count attempts (time, result) and deliveries accepted (time) of one mailing."""
    slots: dict[datetime, dict[str, int]] = defaultdict(
        lambda: {"attempts": 0, "successes": 0, "failures": 0, "sent": 0}
    )
    for attempted_at, status in attempts:
        figures = slots[slot_of(attempted_at)]
        figures["attempts"] += 1
        figures["successes"] += status == AttemptStatus.SUCCESS
        figures["failures"] += status == AttemptStatus.FAILURE
    for sent_at in sent:
        slots[slot_of(sent_at)]["sent"] += 1
    if not slots:
        return
    dialect = postgresql if is_postgresql(db.session) else sqlite
    statement = dialect.insert(AttemptStat)
    statement = statement.on_conflict_do_update(
        index_elements=[AttemptStat.mailing_id, AttemptStat.slot],
        set_={
            name: getattr(AttemptStat, name) + getattr(statement.excluded, name)
            for name in ("attempts", "successes", "failures", "sent")
        },
    )
    # In slot order, so that two workers adding to the same slots lock them in the same order.
    db.session.execute(
        statement, [{"mailing_id": mailing_id, "slot": slot, **figures} for slot, figures in sorted(slots.items())]
    )

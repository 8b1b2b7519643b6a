"""The periodic jobs, registered with rq-scheduler by `flask scheduler run`.

Each has a stable id. At start they are created afresh (a changed interval applies) and the
periodic jobs no longer defined are cancelled, with any copy of them waiting in the queue; before
every pass the scheduler puts back any that is missing, so a Redis that restarted empty gets them
again without a restart.
"""

from datetime import UTC, datetime

from flask import current_app
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq_scheduler import Scheduler

PERIODIC_JOBS = (
    # (stable id, function, the setting holding its interval in seconds)
    ("mailer-dispatch-due-mailings", "mailer.jobs.sending.dispatch_due_mailings", "DISPATCH_INTERVAL"),
    ("mailer-reconcile-sending", "mailer.jobs.sending.reconcile", "RECONCILE_INTERVAL"),
)
PERIODIC_PREFIX = "mailer-"


class MailerScheduler(Scheduler):
    """rq-scheduler that checks its periodic jobs are there before each pass."""

    def enqueue_jobs(self):
        ensure_periodic_jobs(self)
        return super().enqueue_jobs()


def _schedule(scheduler: Scheduler, job_id: str, function: str, setting: str) -> None:
    interval = current_app.config[setting]
    scheduler.schedule(
        scheduled_time=datetime.now(UTC),
        func=function,
        interval=interval,
        repeat=None,  # for ever
        id=job_id,
        queue_name=current_app.config["RQ_QUEUE"],
        # Ahead of the send jobs, so that a busy worker still dispatches on time.
        at_front=True,
        description=f"{function.rsplit('.', 1)[1]} every {interval} s",
    )


def register_periodic_jobs(scheduler: Scheduler) -> list[str]:
    """Create every periodic job afresh and cancel those no longer defined; returns the ids of
    the periodic jobs."""
    cancel_retired_jobs(scheduler)
    for job_id, function, setting in PERIODIC_JOBS:
        if job_id in scheduler:
            scheduler.cancel(job_id)
        _schedule(scheduler, job_id, function, setting)
    return [job_id for job_id, _, _ in PERIODIC_JOBS]


def cancel_retired_jobs(scheduler: Scheduler) -> list[str]:
    """Cancel the periodic jobs of Mailer that are no longer defined (a job renamed or removed
    by an upgrade): off the schedule, out of the queue if a copy waits there, and deleted.
    Returns their ids."""
    wanted = {job_id for job_id, _, _ in PERIODIC_JOBS}
    queue = Queue(current_app.config["RQ_QUEUE"], connection=scheduler.connection)
    found = [job.id for job in scheduler.get_jobs()] + queue.get_job_ids()
    retired = sorted({job_id for job_id in found if job_id.startswith(PERIODIC_PREFIX) and job_id not in wanted})
    for job_id in retired:
        scheduler.cancel(job_id)
        try:
            Job.fetch(job_id, connection=scheduler.connection).delete()
        except NoSuchJobError:
            queue.remove(job_id)
    return retired


def ensure_periodic_jobs(scheduler: Scheduler) -> list[str]:
    """Create the periodic jobs that are missing; returns their ids."""
    missing = [(job_id, function, setting) for job_id, function, setting in PERIODIC_JOBS if job_id not in scheduler]
    for job_id, function, setting in missing:
        _schedule(scheduler, job_id, function, setting)
    return [job_id for job_id, _, _ in missing]

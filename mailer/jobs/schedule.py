"""The periodic jobs, registered with rq-scheduler when `flask scheduler run` starts.

Each has a stable id and is cancelled and created again at every start, so starting the
scheduler twice (or two schedulers) leaves one copy of each, with the current interval.
"""
from datetime import datetime, timezone

from flask import current_app
from rq_scheduler import Scheduler

PERIODIC_JOBS = (
    # (stable id, function, the setting holding its interval in seconds)
    ("mailer-dispatch-due-mailings", "mailer.jobs.sending.dispatch_due_mailings", "DISPATCH_INTERVAL"),
    ("mailer-reconcile-sending", "mailer.jobs.sending.reconcile", "RECONCILE_INTERVAL"),
)


def register_periodic_jobs(scheduler: Scheduler) -> list[str]:
    now = datetime.now(timezone.utc)
    registered = []
    for job_id, function, setting in PERIODIC_JOBS:
        if job_id in scheduler:
            scheduler.cancel(job_id)
        scheduler.schedule(
            scheduled_time=now,
            func=function,
            interval=current_app.config[setting],
            repeat=None,  # for ever
            id=job_id,
            queue_name=current_app.config["RQ_QUEUE"],
            # Ahead of the send jobs, so that a busy worker still dispatches on time.
            at_front=True,
            description=f"{function.rsplit('.', 1)[1]} every {current_app.config[setting]} s",
        )
        registered.append(job_id)
    return registered

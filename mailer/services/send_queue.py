"""The Redis side of sending: which send jobs exist and how they are queued.

Redis only carries "work on run N"; the database says what is left to send. A send job for a
run can therefore be queued any number of times: each claims what nobody holds, and a job that
finds nothing to do settles the run and ends.
"""

import logging
import secrets
from datetime import datetime

from redis.exceptions import RedisError

from mailer.extensions import rq

log = logging.getLogger(__name__)

SEND_JOB = "mailer.jobs.sending.send_run"
# Every send job's id starts with this and the run's id, so the queue tells which runs have
# work waiting (see `waiting_run_ids`).
JOB_ID_PREFIX = "send-run-"
JOB_TIMEOUT = 3600


def send_job_id(run_id: int) -> str:
    return f"{JOB_ID_PREFIX}{run_id}-{secrets.token_hex(4)}"


def run_id_of_job(job_id: str) -> int | None:
    if not job_id.startswith(JOB_ID_PREFIX):
        return None
    number = job_id[len(JOB_ID_PREFIX) :].split("-", 1)[0]
    return int(number) if number.isdigit() else None


def _job_options(run_id: int) -> dict:
    return {
        "job_id": send_job_id(run_id),
        "job_timeout": JOB_TIMEOUT,
        "result_ttl": 600,
        "failure_ttl": 7 * 24 * 3600,
        "description": f"send run {run_id}",
    }


def enqueue_run(run_id: int) -> bool:
    """Make sure a send job for the run waits in the queue (after the run's commit).

    One waiting job is enough however many workers there are: each job that starts and finds
    more work than it holds queues the next one, so every idle worker joins in turn (see
    `sending.work_run`). False when Redis is unreachable: the run stays in the database and the
    reconciler queues it once Redis answers again.
    """
    try:
        if run_id in waiting_run_ids(scheduled=False):
            return True
        rq.queue.enqueue(SEND_JOB, run_id, **_job_options(run_id))
    except RedisError as error:
        log.warning("run %s: could not reach Redis to queue its sending (%s); the reconciler will", run_id, error)
        return False
    return True


def enqueue_run_later(run_id: int, at: datetime) -> bool:
    """Queue a send job for `at` (the next retry), unless one is already scheduled for the run."""
    try:
        registry = rq.queue.scheduled_job_registry
        if any(run_id_of_job(job_id) == run_id for job_id in registry.get_job_ids()):
            return True
        rq.queue.enqueue_at(at, SEND_JOB, run_id, **_job_options(run_id))
    except RedisError as error:
        log.warning("run %s: could not schedule its retries (%s); the reconciler will", run_id, error)
        return False
    return True


def waiting_run_ids(scheduled: bool = True) -> set[int]:
    """Runs that have a send job waiting in the queue (or, with `scheduled`, for a later time)."""
    queue = rq.queue
    job_ids = queue.get_job_ids() + (queue.scheduled_job_registry.get_job_ids() if scheduled else [])
    return {run_id for run_id in map(run_id_of_job, job_ids) if run_id is not None}

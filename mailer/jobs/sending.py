"""Sending jobs: the periodic dispatch and reconciler, and the work on one run."""

from mailer.extensions import db
from mailer.services import dispatch, sending


def dispatch_due_mailings() -> list[int]:
    """Create the runs that are due and queue their sending (every DISPATCH_INTERVAL seconds)."""
    try:
        return dispatch.dispatch_due_mailings()
    finally:
        db.session.remove()


def reconcile() -> dict:
    """Return expired leases, re-queue runs nobody works on, close runs left over."""
    try:
        return dispatch.reconcile()
    finally:
        db.session.remove()


def send_run(run_id: int) -> dict:
    """Send the due deliveries of one run over several connections, until none is left."""
    try:
        return sending.work_run(run_id)
    finally:
        db.session.remove()

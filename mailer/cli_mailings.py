"""`flask mailings ...`: send a mailing now, run a dispatch pass, repair after a crash."""

import time

import click
from sqlalchemy.exc import SQLAlchemyError

from mailer.extensions import db
from mailer.models import Mailing, MailingRun

DATABASE_AWAY = "The database does not answer; waiting for it (the workers carry on once it is back)."


@click.group("mailings", help="Send mailings from the command line.")
def mailings_cli():
    pass


def run_summary(run: MailingRun) -> str:
    """`run N: X sent, Y failed, Z skipped in T s (R msg/s)`, timed from the first claim."""
    begin = run.started_at or run.created_at
    seconds = max((run.finished_at - begin).total_seconds(), 0.0) if run.finished_at and begin else 0.0
    rate = run.sent_count / seconds if seconds > 0 else float(run.sent_count)
    return (
        f"run {run.id}: {run.sent_count} sent, {run.failed_count} failed, {run.skipped_count} skipped "
        f"in {seconds:.1f} s ({rate:.1f} msg/s)"
        + (f"; {run.unknown_count} tries with an unknown outcome" if run.unknown_count else "")
    )


@mailings_cli.command("send", help="Send mailing ID to all its clients now (a manual run).")
@click.argument("mailing_id", type=int)
@click.option("--wait", is_flag=True, help="Show the progress until the run is over.")
@click.option("--poll", default=0.5, show_default=True, help="Seconds between two progress lines.")
def send(mailing_id, wait, poll):
    from mailer.services.runs import SendingRefused, start_manual_run
    from mailer.services.send_queue import enqueue_run

    mailing = db.session.get(Mailing, mailing_id)
    if mailing is None:
        raise click.ClickException(f"No mailing {mailing_id}.")
    try:
        run = start_manual_run(mailing, None)
    except SendingRefused as refused:
        raise click.ClickException(str(refused)) from None
    run_id = run.id
    click.echo(
        f"run {run_id}: {run.total_count} deliveries for {mailing.name!r} ({run.skipped_count} unsubscribed, skipped)."
    )
    if run.is_active and not enqueue_run(run_id):
        click.echo("Redis is unreachable: the run is kept and will be sent once Redis answers again.")
    if not wait:
        return
    last_line, quiet_since, hinted = None, time.monotonic(), False
    while True:
        try:
            db.session.rollback()  # see the workers' commits
            run = db.session.get(MailingRun, run_id, populate_existing=True)
        except SQLAlchemyError:
            # The database is away for a moment: the run goes on without us; keep watching.
            db.session.close()
            if last_line != DATABASE_AWAY:
                click.echo(DATABASE_AWAY)
                last_line = DATABASE_AWAY
            time.sleep(max(poll, 1.0))
            continue
        if not run.is_active:
            break
        line = (
            f"run {run_id}: {run.sent_count + run.failed_count + run.skipped_count}/{run.total_count} done "
            f"({run.sent_count} sent, {run.failed_count} failed, {run.skipped_count} skipped)"
        )
        if line != last_line:
            click.echo(line)
            last_line, quiet_since = line, time.monotonic()
        elif not hinted and time.monotonic() - quiet_since > 30:
            click.echo("No progress for 30 s: is a worker (python worker.py) running?")
            hinted = True
        time.sleep(poll)
    if run.status.value == "cancelled":
        click.echo(f"run {run_id} was cancelled.")
    click.echo(run_summary(run))


@mailings_cli.command("dispatch", help="Create the runs that are due now and queue them (one pass).")
def dispatch_command():
    from mailer.services.dispatch import dispatch_due_mailings

    run_ids = dispatch_due_mailings()
    click.echo(f"Dispatched {len(run_ids)} run(s)" + (": " + ", ".join(map(str, run_ids)) if run_ids else "."))


@mailings_cli.command("reconcile", help="Return expired leases and re-queue runs nobody works on (one pass).")
def reconcile_command():
    from mailer.services.dispatch import reconcile

    result = reconcile()
    click.echo(
        f"Returned {result['released']} stuck deliveries; queued runs {result['enqueued'] or 'none'}; "
        f"closed runs {result['finished'] or 'none'}."
    )

"""Runs: "Send now", the live run page, pausing, resuming, cancelling, retrying failures and
sending to the clients a cancelled run did not reach."""

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from mailer.extensions import db
from mailer.listing import list_arguments
from mailer.models import DeliveryStatus, Mailing, MailingRun, RunStatus
from mailer.permissions import EDIT, VIEW, can_edit, get_owned_or_404
from mailer.runs import bp
from mailer.runs.forms import RunActionForm, SendNowForm
from mailer.services import reports, run_control, runs, send_queue


def get_run_or_404(run_id: int, action: str = VIEW) -> MailingRun:
    """The run, if the current user may see (or change) its mailing; 404 otherwise."""
    run = db.session.get(MailingRun, run_id)
    if run is None:
        abort(404)
    get_owned_or_404(Mailing, run.mailing_id, action)
    return run


@bp.route("/mailing/<int:mailing_id>/send", methods=["GET", "POST"])
def send_now(mailing_id: int):
    """Send now: a confirmation page saying whom it reaches, then a manual run."""
    mailing = get_owned_or_404(Mailing, mailing_id, EDIT)
    form = SendNowForm()
    if request.method == "GET":
        summary = run_control.send_now_summary(mailing)
        form.last_run.data = summary.last_run_id
        return render_template("runs/send_now.html", mailing=mailing, summary=summary, form=form)
    if not form.validate_on_submit():
        abort(400)
    try:
        run = runs.start_manual_run(mailing, current_user, last_run_seen=form.last_run.data)
    except runs.SendingRefused as refused:
        return refused_back_to(refused, url_for("mailings.detail", mailing_id=mailing_id))
    queue_run(
        run,
        nobody=_("Run %(id)s had nobody to send to: every client is unsubscribed or the mailing has none.", id=run.id),
        sending=ngettext(
            "Sending “%(name)s” to %(num)s client.",
            "Sending “%(name)s” to %(num)s clients.",
            run.total_count - run.skipped_count,
            name=mailing.name,
        ),
    )
    return run_page(run)


def run_page(run: MailingRun):
    return redirect(url_for("runs.detail", run_id=run.id))


def refused_back_to(refused: runs.SendingRefused, url: str):
    """A run action that was refused: nothing of it is kept, and the person is told why."""
    db.session.rollback()
    flash(str(refused), "danger")
    return redirect(url)


def queue_run(run: MailingRun, *, sending: str, nobody: str | None = None) -> bool:
    """Hand a run just committed to the workers and say so; True when it went to the queue.

    `sending` is said once the run is queued. A new run with nobody to send to is over at once:
    `nobody` says so, and why.
    """
    if nobody is not None and not run.is_active:
        flash(nobody, "info")
        return False
    if not send_queue.enqueue_run(run.id):
        flash(str(run_control.QUEUE_DOWN), "warning")
        return False
    flash(sending, "success")
    return True


@bp.route("/<int:run_id>")
def detail(run_id: int):
    run = get_run_or_404(run_id)
    mailing = run.mailing
    arguments = list_arguments({}, "", extra=("status",), owner_filter=False)
    status = arguments.extra["status"] if arguments.extra["status"] in set(DeliveryStatus) else ""
    arguments.extra["status"] = status
    deliveries = reports.deliveries_page(
        run,
        DeliveryStatus(status) if status else None,
        after=arguments.after,
        before=arguments.before,
        count=False,
    )
    progress = runs.progress(run)
    return render_template(
        "runs/detail.html",
        run=run,
        mailing=mailing,
        progress=progress,
        deliveries=deliveries,
        arguments=arguments,
        status=status,
        statuses=[choice.value for choice in DeliveryStatus],
        can_change=can_edit(mailing),
        form=RunActionForm(),
        unreached=progress["pending"] if run.status == RunStatus.CANCELLED else 0,
        rest_run=run_control.rest_run_of(run) if run.status == RunStatus.CANCELLED else None,
        # Only a run with tries of unknown outcome can have failures among them.
        failed_with_unknown=runs.failed_with_unknown_outcome(run)
        if run.failed_count and run.unknown_count and not run.is_active
        else 0,
    )


@bp.route("/<int:run_id>/progress")
def progress(run_id: int):
    return jsonify(runs.progress(get_run_or_404(run_id)))


def checked_run(run_id: int) -> MailingRun:
    """The run behind a button of the run page: the current user may change it, CSRF checked."""
    run = get_run_or_404(run_id, EDIT)
    if not RunActionForm().validate_on_submit():
        abort(400)
    return run


@bp.route("/<int:run_id>/cancel", methods=["POST"])
def cancel(run_id: int):
    run = checked_run(run_id)
    if runs.cancel_run(run):
        flash(
            _(
                "Run %(id)s cancelled. Messages already handed to the SMTP server are not recalled; "
                "“Send to the rest” reaches the clients it did not.",
                id=run.id,
            ),
            "warning",
        )
    else:
        flash(_("Run %(id)s was already over.", id=run.id), "info")
    return run_page(run)


@bp.route("/<int:run_id>/pause", methods=["POST"])
def pause(run_id: int):
    run = checked_run(run_id)
    if run_control.pause_run(run):
        flash(
            _(
                "Run %(id)s paused. Messages already handed to the SMTP server finish; the rest waits "
                "until you resume it.",
                id=run.id,
            ),
            "warning",
        )
    else:
        flash(_("Run %(id)s is not being sent, so it cannot be paused.", id=run.id), "info")
    return run_page(run)


@bp.route("/<int:run_id>/resume", methods=["POST"])
def resume(run_id: int):
    run = checked_run(run_id)
    try:
        run_control.resume_run(run)
    except runs.SendingRefused as refused:
        return refused_back_to(refused, url_for("runs.detail", run_id=run.id))
    queue_run(run, sending=_("Run %(id)s resumed.", id=run.id))
    return run_page(run)


@bp.route("/<int:run_id>/rest", methods=["POST"])
def send_rest(run_id: int):
    run = checked_run(run_id)
    try:
        rest = run_control.start_rest_run(run, current_user)
    except runs.SendingRefused as refused:
        return refused_back_to(refused, url_for("runs.detail", run_id=run.id))
    queue_run(
        rest,
        nobody=_("Run %(id)s had nobody to send to: the clients not reached have unsubscribed.", id=rest.id),
        sending=ngettext(
            "Sending to the %(num)s client run %(id)s did not reach.",
            "Sending to the %(num)s clients run %(id)s did not reach.",
            rest.total_count - rest.skipped_count,
            id=run.id,
        ),
    )
    return run_page(rest)


@bp.route("/<int:run_id>/retry", methods=["POST"])
def retry(run_id: int):
    run = checked_run(run_id)
    maybe_delivered = runs.failed_with_unknown_outcome(run)
    try:
        new_run = runs.start_retry_run(run, current_user)
    except runs.SendingRefused as refused:
        return refused_back_to(refused, url_for("runs.detail", run_id=run.id))
    queued = queue_run(
        new_run,
        nobody=_("Run %(id)s had nobody to send to: the failed clients have unsubscribed.", id=new_run.id),
        sending=ngettext(
            "Retrying %(num)s failed delivery.",
            "Retrying %(num)s failed deliveries.",
            new_run.total_count - new_run.skipped_count,
        ),
    )
    if queued and maybe_delivered:
        flash(
            _(
                "%(delivered)s of them had a try with an unknown outcome and may have received the message already.",
                delivered=maybe_delivered,
            ),
            "warning",
        )
    return run_page(new_run)

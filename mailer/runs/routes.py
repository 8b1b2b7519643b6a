"""Runs: "Send now", the live run page, pausing, resuming, cancelling, retrying failures and
sending to the clients a cancelled run did not reach."""
from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import func, select

from mailer.extensions import db, rq
from mailer.listing import paginate
from mailer.models import Delivery, DeliveryStatus, Mailing, MailingRun
from mailer.permissions import EDIT, VIEW, can_edit, get_owned_or_404
from mailer.runs import bp
from mailer.runs.forms import RunActionForm, SendNowForm
from mailer.services import run_control, runs, send_queue, throttle
from mailer.words import word

DELIVERIES_PER_PAGE = 50


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
    queue_run(run, nobody=_("Run %(id)s had nobody to send to: every client is unsubscribed or the mailing has "
                            "none.", id=run.id),
              sending=ngettext("Sending “%(name)s” to %(num)s client.", "Sending “%(name)s” to %(num)s clients.",
                               run.total_count - run.skipped_count, name=mailing.name))
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


def held_back_by(run: MailingRun) -> str | None:
    """The server limit the run is waiting for right now, in words, or None."""
    if not run.is_active:
        return None
    note = throttle.held_back(rq.connection, run.id)
    return f"the SMTP server's limit of {note['limit']}" if note else None


def progress_of(run: MailingRun) -> dict:
    counts = dict(db.session.execute(
        select(Delivery.status, func.count()).where(Delivery.run_id == run.id).group_by(Delivery.status)
    ).all())
    # The run's counters, read after the deliveries: the run was loaded earlier in the request,
    # and a worker may have recorded results since; the page must not freeze a stale figure.
    db.session.refresh(run)
    done = run.sent_count + run.failed_count + run.skipped_count
    return {
        "id": run.id,
        "status": run.status.value,
        "status_word": str(word(run.status)),
        "active": run.is_active,
        # The page keeps polling while a worker still holds messages of the run, even once it
        # was paused or cancelled: their results are still to come.
        "live": run.is_active or counts.get(DeliveryStatus.SENDING, 0) > 0,
        "total": run.total_count,
        "sent": run.sent_count,
        "failed": run.failed_count,
        "skipped": run.skipped_count,
        "unknown": run.unknown_count,
        "held_back": held_back_by(run),
        "pending": counts.get(DeliveryStatus.PENDING, 0),
        "sending": counts.get(DeliveryStatus.SENDING, 0),
        "done": done,
        "percent": round(100 * done / run.total_count) if run.total_count else 100,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


@bp.route("/<int:run_id>")
def detail(run_id: int):
    run = get_run_or_404(run_id)
    mailing = run.mailing
    status = request.args.get("status", "")
    query = select(Delivery).where(Delivery.run_id == run.id).order_by(Delivery.id)
    if status in {choice.value for choice in DeliveryStatus}:
        query = query.where(Delivery.status == status)
    else:
        status = ""
    deliveries = paginate(query, DELIVERIES_PER_PAGE)
    return render_template(
        "runs/detail.html", run=run, mailing=mailing, progress=progress_of(run), deliveries=deliveries,
        status=status, statuses=[choice.value for choice in DeliveryStatus], can_change=can_edit(mailing),
        form=RunActionForm(), unreached=run_control.unreached_count(run), rest_run=run_control.rest_run_of(run),
        failed_with_unknown=runs.failed_with_unknown_outcome(run) if run.failed_count and not run.is_active else 0,
    )


@bp.route("/<int:run_id>/progress")
def progress(run_id: int):
    return jsonify(progress_of(get_run_or_404(run_id)))


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
        flash(_("Run %(id)s cancelled. Messages already handed to the SMTP server are not recalled; "
              "“Send to the rest” reaches the clients it did not.", id=run.id), "warning")
    else:
        flash(_("Run %(id)s was already over.", id=run.id), "info")
    return run_page(run)


@bp.route("/<int:run_id>/pause", methods=["POST"])
def pause(run_id: int):
    run = checked_run(run_id)
    if run_control.pause_run(run):
        flash(_("Run %(id)s paused. Messages already handed to the SMTP server finish; the rest waits "
              "until you resume it.", id=run.id), "warning")
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
    queue_run(rest, nobody=_("Run %(id)s had nobody to send to: the clients not reached have unsubscribed.",
                             id=rest.id),
              sending=ngettext("Sending to the %(num)s client run %(id)s did not reach.",
                               "Sending to the %(num)s clients run %(id)s did not reach.",
                               rest.total_count - rest.skipped_count, id=run.id))
    return run_page(rest)


@bp.route("/<int:run_id>/retry", methods=["POST"])
def retry(run_id: int):
    run = checked_run(run_id)
    maybe_delivered = runs.failed_with_unknown_outcome(run)
    try:
        new_run = runs.start_retry_run(run, current_user)
    except runs.SendingRefused as refused:
        return refused_back_to(refused, url_for("runs.detail", run_id=run.id))
    queued = queue_run(new_run, nobody=_("Run %(id)s had nobody to send to: the failed clients have unsubscribed.",
                                         id=new_run.id),
                       sending=ngettext("Retrying %(num)s failed delivery.", "Retrying %(num)s failed deliveries.",
                                        new_run.total_count - new_run.skipped_count))
    if queued and maybe_delivered:
        flash(_("%(delivered)s of them had a try with an unknown outcome and may have received the message "
                "already.", delivered=maybe_delivered), "warning")
    return run_page(new_run)

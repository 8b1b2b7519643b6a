from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from mailer.extensions import db
from mailer.forms import add_field_error
from mailer.listing import list_arguments
from mailer.mailings import bp
from mailer.mailings.forms import ConfirmForm, DisableForm, MailingForm
from mailer.models import Mailing, utcnow
from mailer.permissions import EDIT, VIEW, can_edit, can_view_all, get_owned_or_404, manager_required
from mailer.services import dispatch, run_control, send_queue
from mailer.services import mailings as mailing_service
from mailer.services import senders as sender_service
from mailer.services import servers as server_service
from mailer.services.mailings import MailingError


@bp.route("/")
def index():
    view_all = can_view_all()
    arguments = list_arguments(mailing_service.SORT_COLUMNS, mailing_service.DEFAULT_SORT, extra=("status",))
    page = mailing_service.list_page(
        arguments.owner if view_all else current_user.id,
        search=arguments.q,
        status=arguments.extra["status"],
        sort=arguments.sort,
        after=arguments.after,
        before=arguments.before,
    )
    return render_template(
        "mailings/index.html",
        page=page,
        arguments=arguments,
        delivery_totals=mailing_service.delivery_totals([mailing.id for mailing in page.items]),
        owners=mailing_service.owners_with_mailings() if view_all else [],
        statuses=mailing_service.STATUS_FILTERS,
        show_owner=view_all,
    )


@bp.route("/new", methods=["GET", "POST"])
def create():
    form = MailingForm(current_user.id)
    if request.method == "GET":
        form.start_at.data = mailing_service.default_start(utcnow())
        form.recipients.data = mailing_service.CHOSEN_CLIENTS if form.offers_list else mailing_service.ALL_CLIENTS
    if form.validate_on_submit():
        try:
            mailing = mailing_service.create_mailing(current_user, form.to_data(), utcnow())
        except MailingError as error:
            db.session.rollback()
            add_field_error(form, error)
        else:
            db.session.commit()
            flash(_("Mailing “%(name)s” created.", name=mailing.name), "success")
            return start_if_due(mailing)
    return render_form(form, mailing=None)


def start_if_due(mailing: Mailing):
    """A mailing saved to start now (or in the past) gets its run at once, and the person is
    taken to the run page, which follows it live; otherwise to the mailing's page."""
    now = utcnow()
    if mailing_service.is_due(mailing, now):
        run = dispatch.dispatch_mailing(mailing.id, now)
        if run is not None and run.is_active and not send_queue.enqueue_run(run.id):
            flash(str(run_control.QUEUE_DOWN), "warning")
    # The scheduler may have created the run first; either way the page to watch is the run's.
    run = mailing_service.unfinished_run(mailing)
    if run is not None:
        return redirect(url_for("runs.detail", run_id=run.id))
    return redirect(url_for("mailings.detail", mailing_id=mailing.id))


@bp.route("/<int:mailing_id>")
def detail(mailing_id: int):
    mailing = get_owned_or_404(Mailing, mailing_id, VIEW)
    arguments = list_arguments({}, "", owner_filter=False)
    clients = mailing_service.clients_page(mailing, search=arguments.q, after=arguments.after, before=arguments.before)
    recent = mailing_service.recent_runs(mailing)
    return render_template(
        "mailings/detail.html",
        mailing=mailing,
        clients=clients,
        arguments=arguments,
        runs=recent.runs,
        unfinished_run=recent.unfinished,
        run_count=recent.count,
        can_change=can_edit(mailing),
        can_disable=can_view_all(),
        action_form=ConfirmForm(),
        sender=sender_service.sender_for_mailing(mailing),
        server_name=server_service.server_name_for_mailing(mailing),
    )


@bp.route("/<int:mailing_id>/edit", methods=["GET", "POST"])
def edit(mailing_id: int):
    mailing = get_owned_or_404(Mailing, mailing_id, EDIT)
    form = MailingForm(mailing.owner_id, new=False)
    if not form.offers_list:
        form.offer_keeping(mailing.client_count)
    if request.method == "GET":
        form.name.data = mailing.name
        form.message.data = mailing.message_id
        if form.offers_list:
            form.recipients.data = mailing_service.CHOSEN_CLIENTS
            form.clients.data = mailing_service.selected_client_ids(mailing)
        elif mailing.client_count == form.client_count:
            form.recipients.data = mailing_service.ALL_CLIENTS
        else:
            form.recipients.data = mailing_service.KEEP_CLIENTS
        form.start_at.data = mailing.start_at
        # A "Once" mailing that ends at its start was saved without an end.
        form.end_at.data = None if mailing.end_at == mailing.start_at else mailing.end_at
        form.repeat.data = mailing.repeat.value
        form.sender_identity.data = mailing.sender_identity_id
        form.smtp_server.data = mailing.smtp_server_id
    if form.validate_on_submit():
        try:
            mailing_service.update_mailing(mailing, form.to_data(), utcnow())
        except MailingError as error:
            db.session.rollback()
            add_field_error(form, error)
        else:
            db.session.commit()
            flash(_("Mailing “%(name)s” saved.", name=mailing.name), "success")
            return start_if_due(mailing)
    return render_form(form, mailing=mailing)


@bp.route("/<int:mailing_id>/delete", methods=["GET", "POST"])
def delete(mailing_id: int):
    mailing = get_owned_or_404(Mailing, mailing_id, EDIT)
    form = ConfirmForm()
    if form.validate_on_submit():
        name, owner_id = mailing.name, mailing.owner_id
        try:
            mailing_service.delete_mailing(mailing)
        except MailingError as error:
            db.session.rollback()
            flash(str(error), "danger")
        else:
            db.session.commit()
            flash(_("Mailing “%(name)s” deleted.", name=name), "success")
            if owner_id != current_user.id:
                return redirect(url_for("mailings.index", owner=owner_id))
            return redirect(url_for("mailings.index"))
    impact = mailing_service.deletion_impact(mailing)
    return render_template("mailings/delete.html", mailing=mailing, impact=impact, form=form)


@bp.route("/<int:mailing_id>/disable", methods=["GET", "POST"])
@manager_required
def disable(mailing_id: int):
    """GET asks for confirmation and an optional reason; POST disables and pauses its run."""
    mailing = get_owned_or_404(Mailing, mailing_id, VIEW)
    form = DisableForm()
    if form.validate_on_submit():
        if mailing_service.disable_mailing(mailing, current_user, utcnow(), form.reason.data or ""):
            db.session.commit()
            flash(
                _(
                    "Mailing “%(name)s” disabled: it will not be sent until a manager enables it, and a run "
                    "in progress is paused.",
                    name=mailing.name,
                ),
                "warning",
            )
        else:
            flash(_("This mailing was already disabled."), "info")
        return redirect(url_for("mailings.detail", mailing_id=mailing.id))
    return render_template(
        "mailings/disable.html", mailing=mailing, form=form, active_run=mailing_service.unfinished_run(mailing)
    ), 400 if form.errors else 200


@bp.route("/<int:mailing_id>/enable", methods=["POST"])
@manager_required
def enable(mailing_id: int):
    mailing = get_owned_or_404(Mailing, mailing_id, VIEW)
    if ConfirmForm().validate_on_submit():
        if mailing_service.enable_mailing(mailing, utcnow()):
            db.session.commit()
            flash(_("Mailing “%(name)s” enabled again.", name=mailing.name), "success")
        else:
            flash(_("This mailing was not disabled."), "info")
    return redirect(url_for("mailings.detail", mailing_id=mailing.id))


def render_form(form: MailingForm, mailing: Mailing | None):
    status = 400 if form.errors else 200
    return render_template("mailings/form.html", form=form, mailing=mailing), status

from datetime import timedelta

from flask import Response, abort, render_template, request, stream_with_context
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.utils import secure_filename

from mailer.listing import list_arguments
from mailer.models import AttemptStatus, DeliveryStatus, Mailing
from mailer.permissions import can_view_all, get_owned_or_404
from mailer.reports import bp
from mailer.reports.chart import daily_chart
from mailer.reports.forms import (
    AttemptFilterForm,
    DeliveryFilterForm,
    OwnerFilterForm,
    StatisticsForm,
    owner_choices,
)
from mailer.services import mailings as mailing_service
from mailer.services import reports
from mailer.timezones import user_zone


@bp.context_processor
def report_helpers():
    return {"human_duration": human_duration}


def human_duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    # Abbreviated units have no plural forms ("2 h 05 min", "2 ч 05 мин").
    if hours:
        return _("%(hours)s h %(minutes)s min", hours=hours, minutes=format(minutes, "02d"))
    if minutes:
        return _("%(minutes)s min %(seconds)s s", minutes=minutes, seconds=format(seconds, "02d"))
    return _("%(seconds)s s", seconds=seconds)


def apply_owner_filter(form) -> tuple[bool, int | None]:
    """Validate a filter form with an owner field: (valid, whose data to show).

    Managers and admins choose an owner or everyone (None); an owner has no such field and
    always sees only their own data.
    """
    if can_view_all():
        form.owner.choices = owner_choices(mailing_service.owners_with_mailings())
    else:
        del form.owner
    valid = form.validate()
    if not can_view_all():
        return valid, current_user.id
    return valid, form.owner_id if valid else None


@bp.route("/")
def index():
    form = OwnerFilterForm(request.args)
    valid, owner_id = apply_owner_filter(form)
    arguments = list_arguments({}, "", owner_filter=False, extra=("owner",))
    page = reports.mailings_page(owner_id, after=arguments.after, before=arguments.before)
    return render_template(
        "reports/index.html",
        form=form,
        rows=reports.mailing_rows(page.items),
        page=page,
        arguments=arguments,
        show_owner=can_view_all(),
    ), 200 if valid else 400


@bp.route("/mailings/<int:mailing_id>")
def mailing(mailing_id: int):
    mailing = get_owned_or_404(Mailing, mailing_id)
    arguments = list_arguments({}, "", owner_filter=False)
    page = reports.runs_page(mailing, after=arguments.after, before=arguments.before)
    return render_template(
        "reports/mailing.html",
        mailing=mailing,
        totals=reports.delivery_counts_by_mailing([mailing.id])[mailing.id],
        rows=reports.run_rows(page.items),
        page=page,
        arguments=arguments,
    )


def attempt_filter_from(form: AttemptFilterForm) -> reports.AttemptFilter:
    since, until = reports.day_bounds(form.date_from.data, form.date_to.data, user_zone(current_user))
    status = AttemptStatus(form.status.data) if form.status.data else None
    return reports.AttemptFilter(status=status, since=since, until=until)


def run_of(mailing: Mailing, run_id: int):
    run = reports.find_run(mailing, run_id)
    if run is None:
        abort(404)
    return run


@bp.route("/mailings/<int:mailing_id>/runs/<int:run_id>")
def run(mailing_id: int, run_id: int):
    mailing = get_owned_or_404(Mailing, mailing_id)
    run = run_of(mailing, run_id)
    view = "deliveries" if request.args.get("view") == "deliveries" else "attempts"
    arguments = list_arguments({}, "", owner_filter=False, extra=("view", "status", "date_from", "date_to"))
    if view == "deliveries":
        form = DeliveryFilterForm(request.args)
        valid = form.validate()
        status = DeliveryStatus(form.status.data) if valid and form.status.data else None
        page = reports.deliveries_page(run, status, after=arguments.after, before=arguments.before)
    else:
        form = AttemptFilterForm(request.args)
        valid = form.validate()
        attempt_filter = attempt_filter_from(form) if valid else reports.AttemptFilter()
        page = reports.attempts_page(attempt_filter, run_id=run.id, after=arguments.after, before=arguments.before)
    return render_template(
        "reports/run.html",
        mailing=mailing,
        run=run,
        counts=reports.Counts.of_run(run),
        duration=reports.run_duration(run),
        view=view,
        form=form,
        filtered=valid
        and any(value for name, value in request.args.items() if name not in ("view", "after", "before")),
        page=page,
        arguments=arguments,
    ), 200 if valid else 400


def csv_response(mailing: Mailing, run_id: int | None):
    form = AttemptFilterForm(request.args)
    if not form.validate():
        abort(400)
    rows = reports.attempts_csv(
        attempt_filter_from(form),
        user_zone(current_user),
        mailing_id=mailing.id,
        run_id=run_id,
    )
    name = secure_filename(mailing.name)[:60] or "mailing"
    filename = f"{name}-{mailing.id}" + (f"-run-{run_id}" if run_id else "") + "-attempts.csv"
    # The generator runs while the response is sent, batch by batch.
    response = Response(stream_with_context(rows), mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response


@bp.route("/mailings/<int:mailing_id>/attempts.csv")
def mailing_csv(mailing_id: int):
    return csv_response(get_owned_or_404(Mailing, mailing_id), None)


@bp.route("/mailings/<int:mailing_id>/runs/<int:run_id>/attempts.csv")
def run_csv(mailing_id: int, run_id: int):
    mailing = get_owned_or_404(Mailing, mailing_id)
    return csv_response(mailing, run_of(mailing, run_id).id)


@bp.route("/statistics")
def statistics():
    zone = user_zone(current_user)
    default = reports.Period.last_days(zone)
    form = StatisticsForm(request.args)
    form.fill_empty_dates(default.last, reports.DEFAULT_PERIOD_DAYS)
    valid, owner_id = apply_owner_filter(form)
    period = reports.Period(form.date_from.data, form.date_to.data, zone) if valid else default
    stats = reports.statistics(period, owner_id)
    if not can_view_all():
        scope = _("Your mailings")
    elif owner_id is None:
        scope = _("Everyone's mailings")
    else:
        scope = _("Mailings of %(owner)s", owner=next(c.label for c in form.owner.choices if c.value == str(owner_id)))
    return render_template(
        "reports/statistics.html",
        form=form,
        stats=stats,
        chart=daily_chart(stats.per_day),
        show_owner=can_view_all(),
        scope=scope,
        zone_name=getattr(zone, "key", "UTC"),
    ), 200 if valid else 400

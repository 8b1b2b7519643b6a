from flask import Response, abort, flash, make_response, redirect, render_template, stream_with_context, url_for
from flask_babel import format_number, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from redis.exceptions import RedisError

from mailer.clients import bp
from mailer.clients.forms import ClientForm, DeleteForm, ImportForm
from mailer.errors import render_error
from mailer.extensions import db
from mailer.forms import add_field_error
from mailer.listing import list_arguments
from mailer.models import Client
from mailer.permissions import EDIT, VIEW, can_edit, can_view_all, get_owned_or_404
from mailer.services import client_import
from mailer.services import clients as client_service
from mailer.services.client_import import ImportFileError
from mailer.services.clients import ClientError


@bp.route("/")
def index():
    arguments = list_arguments(client_service.SORT_COLUMNS, client_service.DEFAULT_SORT)
    view_all = can_view_all()
    page = client_service.list_page(
        current_user,
        search=arguments.q,
        sort=arguments.sort,
        owner_id=arguments.owner,
        view_all=view_all,
        after=arguments.after,
        before=arguments.before,
    )
    return render_template(
        "clients/index.html",
        page=page,
        arguments=arguments,
        view_all=view_all,
        owners=client_service.all_owners() if view_all else [],
        can_edit=can_edit,
    )


@bp.route("/new", methods=["GET", "POST"])
def create():
    form = ClientForm()
    if form.validate_on_submit():
        try:
            client = client_service.create_client(current_user, form.email.data, form.full_name.data, form.comment.data)
        except ClientError as error:
            add_field_error(form, error, "email")
        else:
            db.session.commit()
            flash(_("Client %(email)s added.", email=client.email), "success")
            return redirect(url_for("clients.detail", client_id=client.id))
    return render_template("clients/form.html", form=form, client=None), 400 if form.errors else 200


@bp.route("/<int:client_id>")
def detail(client_id: int):
    client = get_owned_or_404(Client, client_id, VIEW)
    return render_template(
        "clients/detail.html", client=client, can_edit=can_edit(client), mailings=client_service.mailings_using(client)
    )


@bp.route("/<int:client_id>/edit", methods=["GET", "POST"])
def edit(client_id: int):
    client = get_owned_or_404(Client, client_id, EDIT)
    form = ClientForm(obj=client)
    if form.validate_on_submit():
        try:
            client_service.update_client(client, form.email.data, form.full_name.data, form.comment.data)
        except ClientError as error:
            add_field_error(form, error, "email")
        else:
            db.session.commit()
            flash(_("Client saved."), "success")
            return redirect(url_for("clients.detail", client_id=client.id))
    return render_template("clients/form.html", form=form, client=client), 400 if form.errors else 200


@bp.route("/<int:client_id>/delete", methods=["GET", "POST"])
def delete(client_id: int):
    client = get_owned_or_404(Client, client_id, EDIT)
    form = DeleteForm()
    if form.validate_on_submit():
        email = client.email
        client_service.delete_client(client)
        db.session.commit()
        flash(_("Client %(email)s deleted.", email=email), "success")
        return redirect(url_for("clients.index"))
    return render_template(
        "clients/delete.html", client=client, form=form, mailings=client_service.mailings_using(client)
    )


# Import and export ------------------------------------------------------------------------------


@bp.route("/import", methods=["GET", "POST"])
def import_csv():
    form = ImportForm()
    if form.validate_on_submit():
        try:
            return import_upload(form)
        except ImportFileError as error:
            form.file.errors.append(str(error))
    return (
        render_template("clients/import.html", form=form, sync_max_rows=client_import.SYNC_MAX_ROWS),
        400 if form.errors else 200,
    )


def import_upload(form: ImportForm):
    """Import a small file now and show the result; hand a large one to the worker and show
    its progress page."""
    upload = form.file.data
    filename = upload.filename or "clients.csv"
    source = client_import.CsvSource(client_import.decode(upload.read()))
    rows = source.count_rows()
    if not rows:
        raise ImportFileError(_("The file has a header row but no clients under it."))
    if rows > client_import.SYNC_MAX_ROWS:
        import_id = client_import.start_background_import(
            current_user.id, filename, source, rows, form.on_existing.data
        )
        flash(
            ngettext(
                "The file has %(rows)s row: it is being imported in the background.",
                "The file has %(rows)s rows: it is being imported in the background.",
                rows,
                rows=format_number(rows),
            ),
            "info",
        )
        return redirect(url_for("clients.import_status", import_id=import_id))
    report = client_import.import_text(current_user.id, source, form.on_existing.data)
    db.session.commit()
    flash(import_summary(report), "warning" if report.invalid or report.duplicates else "success")
    try:
        import_id = client_import.record_finished_import(current_user.id, filename, form.on_existing.data, report)
    except RedisError:  # the import is done; only its page cannot be kept
        return render_template("clients/import_result.html", report=report, filename=filename)
    # The result has its own address: reloading it shows the result, it does not import again.
    return redirect(url_for("clients.import_status", import_id=import_id))


def import_summary(report) -> str:
    parts = [
        _("%(count)s added", count=report.created),
        _("%(count)s updated", count=report.updated),
        _("%(count)s skipped (already there)", count=report.skipped),
    ]
    if report.duplicates:
        parts.append(ngettext("%(num)s duplicate in the file", "%(num)s duplicates in the file", report.duplicates))
    if report.invalid:
        parts.append(_("%(count)s invalid", count=report.invalid))
    return _("Import finished: %(figures)s.", figures=", ".join(parts))


@bp.route("/import/<import_id>")
def import_status(import_id: str):
    try:
        status = client_import.read_status(import_id)
    except RedisError:
        return render_error(503, _("The progress of the import cannot be read right now. Reload the page in a moment."))
    # An import belongs to the person who started it.
    if status is None or status.owner_id != current_user.id:
        abort(404)
    response = make_response(render_template("clients/import_status.html", status=status))
    if not status.finished:
        # The page follows the worker's progress without any script.
        response.headers["Refresh"] = "3"
    return response


@bp.route("/export.csv")
def export_csv():
    response = Response(stream_with_context(client_service.export_csv(current_user.id)), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="clients.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response

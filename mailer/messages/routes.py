from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from mailer.extensions import db
from mailer.forms import add_field_error
from mailer.listing import list_arguments
from mailer.messages import bp
from mailer.messages.forms import DeleteForm, MessageForm, TestSendForm
from mailer.models import Message
from mailer.permissions import EDIT, VIEW, can_edit, can_view_all, get_owned_or_404, is_admin
from mailer.security import mail_preview_response
from mailer.services import messages as message_service
from mailer.services.clients import all_owners
from mailer.services.messages import MessageError, MessageInUse


@bp.route("/")
def index():
    arguments = list_arguments(message_service.SORT_COLUMNS, message_service.DEFAULT_SORT)
    view_all = can_view_all()
    page = message_service.list_page(
        current_user,
        search=arguments.q,
        sort=arguments.sort,
        owner_id=arguments.owner,
        view_all=view_all,
        after=arguments.after,
        before=arguments.before,
    )
    return render_template(
        "messages/index.html",
        page=page,
        arguments=arguments,
        view_all=view_all,
        owners=all_owners() if view_all else [],
        can_edit=can_edit,
    )


@bp.route("/new", methods=["GET", "POST"])
def create():
    form = MessageForm()
    if form.validate_on_submit():
        try:
            message = message_service.create_message(
                current_user, form.subject.data, form.body_text.data, form.body_html.data
            )
        except MessageError as error:
            add_field_error(form, error, "subject")
        else:
            db.session.commit()
            flash(_("Message saved."), "success")
            return redirect(url_for("messages.detail", message_id=message.id))
    return render_form(form, message=None)


def render_form(form: MessageForm, message: Message | None):
    """The message form, with its live preview for the clients of the message's owner."""
    owner_id = message.owner_id if message else current_user.id
    return render_template(
        "messages/form.html",
        form=form,
        message=message,
        preview_clients=message_service.preview_client_choices(owner_id),
        preview_url=url_for("messages.preview", owner=owner_id if message else None),
    ), 400 if form.errors else 200


@bp.route("/preview", methods=["POST"])
def preview():
    """The preview of the content being edited (the form's fields), as an HTML fragment.

    The clients are those of the current user, or, for an admin editing someone's message,
    of that message's owner (`owner`).
    """
    owner_id = request.args.get("owner", type=int) or current_user.id
    if owner_id != current_user.id and not is_admin():
        abort(404)
    result = message_service.preview(
        owner_id,
        request.form.get("subject", ""),
        request.form.get("body_text", ""),
        request.form.get("body_html") or None,
        request.form.get("preview_client", type=int),
    )
    return render_template("messages/_preview.html", preview=result)


@bp.route("/<int:message_id>")
def detail(message_id: int):
    message = get_owned_or_404(Message, message_id, VIEW)
    preview = message_service.preview(
        message.owner_id, message.subject, message.body_text, message.body_html, request.args.get("client", type=int)
    )
    return render_template(
        "messages/detail.html",
        message=message,
        can_edit=can_edit(message),
        mailings=message_service.mailings_using(message),
        test_form=TestSendForm(),
        preview=preview,
        preview_clients=message_service.preview_client_choices(message.owner_id),
    )


@bp.route("/<int:message_id>/preview")
def preview_html(message_id: int):
    """The HTML a client receives (`?client=`, else a sample one), as a document of its own for
    the sandboxed frame of the message's page: it gets its own restrictive CSP."""
    message = get_owned_or_404(Message, message_id, VIEW)
    result = message_service.preview(
        message.owner_id, message.subject, message.body_text, message.body_html, request.args.get("client", type=int)
    )
    return mail_preview_response(result.html if not result.problem else "")


@bp.route("/<int:message_id>/edit", methods=["GET", "POST"])
def edit(message_id: int):
    message = get_owned_or_404(Message, message_id, EDIT)
    form = MessageForm(obj=message)
    if form.validate_on_submit():
        try:
            message_service.update_message(message, form.subject.data, form.body_text.data, form.body_html.data)
        except MessageError as error:
            add_field_error(form, error, "subject")
        else:
            db.session.commit()
            flash(_("Message saved."), "success")
            return redirect(url_for("messages.detail", message_id=message.id))
    return render_form(form, message=message)


@bp.route("/<int:message_id>/delete", methods=["GET", "POST"])
def delete(message_id: int):
    message = get_owned_or_404(Message, message_id, EDIT)
    form = DeleteForm()
    mailings = message_service.mailings_using(message)
    if form.validate_on_submit():
        try:
            message_service.delete_message(message)
        except MessageInUse as error:
            flash(str(error), "danger")
            mailings = error.mailings
        else:
            db.session.commit()
            flash(_("Message deleted."), "success")
            return redirect(url_for("messages.index"))
    return render_template(
        "messages/delete.html", message=message, form=form, mailings=mailings
    ), 409 if mailings and request.method == "POST" else 200


@bp.route("/<int:message_id>/test", methods=["POST"])
def test_send(message_id: int):
    message = get_owned_or_404(Message, message_id, EDIT)
    form = TestSendForm()
    if form.validate_on_submit():
        try:
            test = message_service.queue_test_send(message, current_user, form.to.data or "")
        except MessageError as error:
            flash(str(error), "danger")
        else:
            flash(
                _(
                    "A test rendered for %(name)s <%(email)s> is on its way to %(recipient)s. "
                    "Its unsubscribe link is a sample and unsubscribes nobody.",
                    name=test.sample_name,
                    email=test.sample_email,
                    recipient=test.recipient,
                ),
                "success",
            )
    return redirect(url_for("messages.detail", message_id=message.id))

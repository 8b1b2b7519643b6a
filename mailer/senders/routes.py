from flask import current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from mailer.extensions import db, limiter
from mailer.forms import add_field_error
from mailer.i18n import lazy_text as _l
from mailer.models import SenderIdentity
from mailer.permissions import EDIT, get_owned_or_404
from mailer.senders import bp
from mailer.senders.forms import ActionForm, EditIdentityForm, IdentityForm
from mailer.services import senders as sender_service
from mailer.services.senders import IdentityError

EMAIL_NOT_SENT = _l("We could not send the confirmation e-mail right now: use “Send the link again” in a few minutes.")


def confirmations_key() -> str:
    return f"sender-confirmations:{getattr(current_user, 'id', None)}"


# Every confirmation e-mail goes to an address its sender typed: a limit per user keeps the
# site from being used to flood someone's mailbox.
limit_confirmations = limiter.shared_limit(
    lambda: current_app.config["SENDER_CONFIRM_LIMIT"],
    scope="sender-confirmations",
    methods=["POST"],
    key_func=confirmations_key,
)


@bp.route("/")
def index():
    return render_template(
        "senders/index.html", identities=sender_service.identities_of(current_user.id), action_form=ActionForm()
    )


@bp.route("/new", methods=["GET", "POST"])
@limit_confirmations
def create():
    form = IdentityForm()
    if form.validate_on_submit():
        try:
            identity = sender_service.add_identity(current_user, form.name.data, form.email.data, form.reply_to.data)
        except IdentityError as error:
            db.session.rollback()
            add_field_error(form, error, "email")
        else:
            db.session.commit()
            if sender_service.send_confirmation(identity):
                flash(
                    _(
                        "We sent a confirmation link to %(email)s. Follow it, logged in as you are now, "
                        "to use this address.",
                        email=identity.email,
                    ),
                    "success",
                )
            else:
                flash(str(EMAIL_NOT_SENT), "warning")
            return redirect(url_for("senders.index"))
    return render_template("senders/form.html", form=form, identity=None), 400 if form.errors else 200


@bp.route("/<int:identity_id>/edit", methods=["GET", "POST"])
def edit(identity_id: int):
    identity = get_owned_or_404(SenderIdentity, identity_id, EDIT)
    form = EditIdentityForm(obj=identity)
    if form.validate_on_submit():
        try:
            sender_service.update_identity(identity, form.name.data, form.reply_to.data)
        except IdentityError as error:
            db.session.rollback()
            add_field_error(form, error, "name")
        else:
            db.session.commit()
            flash(_("Sender address saved."), "success")
            return redirect(url_for("senders.index"))
    return render_template("senders/form.html", form=form, identity=identity), 400 if form.errors else 200


@bp.route("/<int:identity_id>/resend", methods=["POST"])
@limit_confirmations
def resend(identity_id: int):
    identity = get_owned_or_404(SenderIdentity, identity_id, EDIT)
    if ActionForm().validate_on_submit():
        if identity.is_confirmed:
            flash(_("%(email)s is already confirmed.", email=identity.email), "info")
        elif sender_service.send_confirmation(identity):
            flash(_("A new confirmation link is on its way to %(email)s.", email=identity.email), "success")
        else:
            flash(str(EMAIL_NOT_SENT), "warning")
    return redirect(url_for("senders.index"))


@bp.route("/<int:identity_id>/delete", methods=["GET", "POST"])
def delete(identity_id: int):
    identity = get_owned_or_404(SenderIdentity, identity_id, EDIT)
    form = ActionForm()
    if form.validate_on_submit():
        email = identity.email
        sender_service.delete_identity(identity)
        db.session.commit()
        flash(_("Sender address %(email)s deleted.", email=email), "success")
        return redirect(url_for("senders.index"))
    return render_template(
        "senders/delete.html", identity=identity, form=form, mailings=sender_service.mailings_using(identity)
    )


@bp.route("/confirm/<token>")
def confirm(token: str):
    try:
        identity = sender_service.confirm(token, current_user)
    except IdentityError as error:
        db.session.rollback()
        flash(str(error), "danger")
    else:
        db.session.commit()
        flash(_("%(email)s is confirmed: your mailings can now be sent from it.", email=identity.email), "success")
    return redirect(url_for("senders.index"))

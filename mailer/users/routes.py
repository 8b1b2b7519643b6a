from flask import flash, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from mailer.extensions import db
from mailer.listing import list_arguments
from mailer.models import User
from mailer.permissions import manager_required
from mailer.services import users as user_service
from mailer.services.users import UserActionError
from mailer.urls import redirect_next
from mailer.users import bp
from mailer.users.forms import BlockForm


@bp.route("/")
@manager_required
def index():
    arguments = list_arguments(user_service.SORT_COLUMNS, user_service.DEFAULT_SORT, owner_filter=False)
    page = user_service.list_page(
        search=arguments.q, sort=arguments.sort, after=arguments.after, before=arguments.before
    )
    return render_template("users/index.html", page=page, arguments=arguments, can_block=can_block)


def can_block(user: User) -> bool:
    return user.id != current_user.id and not user.is_admin


def change_block(user_id: int, blocked: bool):
    user = db.get_or_404(User, user_id)
    form = BlockForm()
    if not form.validate_on_submit():
        return render_template("users/block.html", user=user, form=form), 400
    try:
        if blocked:
            changed = user_service.block(current_user, user, form.reason.data or "")
        else:
            changed = user_service.unblock(current_user, user)
    except UserActionError as error:
        db.session.rollback()
        flash(str(error), "danger")
    else:
        db.session.commit()
        if not changed:
            flash(
                _("%(email)s was already blocked.", email=user.email)
                if blocked
                else _("%(email)s was already active.", email=user.email),
                "info",
            )
        elif blocked:
            flash(
                _(
                    "%(email)s is blocked: logged out at their next request (where they are told), their "
                    "mailings are not sent and their runs in progress are paused.",
                    email=user.email,
                ),
                "success",
            )
        else:
            flash(_("%(email)s is unblocked and can log in again.", email=user.email), "success")
    # Back to the same page of the list, with the same search.
    return redirect_next(form.next.data, "users.index")


@bp.route("/<int:user_id>/block", methods=["GET", "POST"])
@manager_required
def block(user_id: int):
    """GET asks for confirmation and an optional reason; POST blocks."""
    if request.method == "GET":
        user = db.get_or_404(User, user_id)
        form = BlockForm(next=request.args.get("next", ""))
        return render_template("users/block.html", user=user, form=form, can_block=can_block(user))
    return change_block(user_id, blocked=True)


@bp.route("/<int:user_id>/unblock", methods=["POST"])
@manager_required
def unblock(user_id: int):
    return change_block(user_id, blocked=False)

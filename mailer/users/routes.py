from flask import flash, render_template, request
from flask_login import current_user

from mailer.extensions import db
from mailer.models import User
from mailer.listing import paginate
from mailer.permissions import manager_required
from mailer.services import users as user_service
from mailer.services.users import UserActionError
from mailer.urls import redirect_next
from mailer.users import bp

PER_PAGE = 25


@bp.route("/")
@manager_required
def index():
    search = request.args.get("q", "").strip()[:200]
    page = paginate(user_service.list_query(search), PER_PAGE)
    return render_template("users/index.html", page=page, search=search, can_block=can_block)


def can_block(user: User) -> bool:
    return user.id != current_user.id and not user.is_admin


def change_block(user_id: int, blocked: bool):
    user = db.get_or_404(User, user_id)
    action = user_service.block if blocked else user_service.unblock
    try:
        changed = action(current_user, user)
    except UserActionError as error:
        db.session.rollback()
        flash(str(error), "danger")
    else:
        db.session.commit()
        if not changed:
            flash(f"{user.email} was already {'blocked' if blocked else 'active'}.", "info")
        elif blocked:
            flash(f"{user.email} is blocked: logged out at their next request, and their mailings are not sent.",
                  "success")
        else:
            flash(f"{user.email} is unblocked and can log in again.", "success")
    # Back to the same page of the list, with the same search.
    return redirect_next(request.form.get("next"), "users.index")


@bp.route("/<int:user_id>/block", methods=["POST"])
@manager_required
def block(user_id: int):
    return change_block(user_id, blocked=True)


@bp.route("/<int:user_id>/unblock", methods=["POST"])
@manager_required
def unblock(user_id: int):
    return change_block(user_id, blocked=False)

"""The managers' users page: listing accounts, blocking and unblocking them. No request objects here."""

from flask_babel import gettext as _
from sqlalchemy import or_, select

from mailer.models import Mailing, User
from mailer.services import accounts, paging, run_control

# The reason a manager gives for blocking an account.
REASON_MAX_LENGTH = 500


class UserActionError(ValueError):
    """A block or unblock that is refused; the message is for the person who asked."""


# ?sort= values of the list page; a leading "-" sorts in descending order.
SORT_COLUMNS = {"email": User.email, "created": User.created_at}
DEFAULT_SORT = "-created"


def list_page(
    *,
    search: str = "",
    sort: str = DEFAULT_SORT,
    after: tuple | None = None,
    before: tuple | None = None,
    per_page: int = paging.PER_PAGE,
) -> paging.Page:
    """A page of every user, newest first, or of those whose e-mail or name contains `search`."""
    query = select(User)
    search = (search or "").strip()
    if search:
        query = query.where(
            or_(User.email.icontains(search, autoescape=True), User.full_name.icontains(search, autoescape=True))
        )
    keys = paging.sort_keys(SORT_COLUMNS, sort, DEFAULT_SORT, User.id)
    return paging.keyset_page(query, keys, per_page, after=after, before=before)


def check_can_block(actor: User, user: User) -> None:
    """Managers and admins may block anyone but themselves and the admins."""
    if not actor.is_manager:
        raise UserActionError(_("Only managers and admins can block or unblock users."))
    if user.id == actor.id:
        raise UserActionError(_("You cannot block or unblock yourself."))
    if user.is_admin:
        raise UserActionError(_("Admins cannot be blocked or unblocked here."))


def block(actor: User, user: User, reason: str = "") -> bool:
    """Block the user: they cannot log in, their sessions end at their next request (where they
    are told why), the sending engine skips their mailings and their runs in progress are paused.
    Returns False when the user was already blocked."""
    check_can_block(actor, user)
    if not user.is_active:
        return False
    accounts.set_blocked(user, True)
    user.blocked_reason = (reason or "").strip()[:REASON_MAX_LENGTH]
    run_control.pause_runs_of_mailings(select(Mailing.id).where(Mailing.owner_id == user.id).scalar_subquery())
    return True


def unblock(actor: User, user: User) -> bool:
    """Let a blocked user log in again. Returns False when the user was not blocked."""
    check_can_block(actor, user)
    if user.is_active:
        return False
    accounts.set_blocked(user, False)
    user.blocked_reason = ""
    return True

"""Roles as Flask-Principal needs, and the one loader through which objects are reached.

Every role check goes through the permissions here (`is_admin`, `can_view_all` and the
decorators), never through the user's roles directly."""

from functools import wraps

from flask import abort, g
from flask_login import current_user
from flask_principal import AnonymousIdentity, Identity, Permission, RoleNeed, UserNeed, identity_loaded

from mailer.extensions import db, login_manager, principal
from mailer.models import Role

admin_permission = Permission(RoleNeed(Role.ADMIN))
# Managers oversee everyone; admins can do all a manager can.
manager_permission = Permission(RoleNeed(Role.MANAGER), RoleNeed(Role.ADMIN))

VIEW = "view"
EDIT = "edit"


def load_identity():
    """The identity is the logged-in user (Flask-Login), reloaded on every request."""
    if current_user.is_authenticated:
        return Identity(current_user.id, auth_type="session")
    return AnonymousIdentity()


def on_identity_loaded(sender, identity) -> None:
    identity.user = current_user
    if current_user.is_authenticated:
        identity.provides.add(UserNeed(current_user.id))
        for name in current_user.role_names:
            identity.provides.add(RoleNeed(name))


def init_principal(app) -> None:
    principal.identity_loader(load_identity)
    identity_loaded.connect_via(app)(on_identity_loaded)


def require_login():
    """before_request hook of every blueprint that is not public."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def current_identity() -> Identity:
    """The request's identity. Loaded here when something asks before Flask-Principal's own hook
    ran: hooks that run first (the refusal of unusable input, the queue dashboard's gate) and the
    error pages they lead to."""
    if "identity" not in g:
        principal.set_identity(load_identity())
    return g.identity


def is_admin() -> bool:
    return admin_permission.allows(current_identity())


def can_view_all() -> bool:
    """Managers and admins see everyone's objects."""
    return manager_permission.allows(current_identity())


def can_edit(obj) -> bool:
    """Owners change their own objects and admins anyone's; managers only look."""
    return obj.owner_id == current_user.id or is_admin()


def get_owned_or_404(model, object_id, action: str = VIEW):
    """Return the object if the current user may act on it.

    An owner reaches only their own objects: anything else answers 404, so another user's
    object is never revealed. Managers may view everything but change nothing of others
    (403); admins may do everything.
    """
    obj = db.session.get(model, object_id)
    if obj is None:
        abort(404)
    if can_edit(obj):
        return obj
    if can_view_all():
        if action == VIEW:
            return obj
        abort(403)
    abort(404)


def manager_required(view):
    """Managers and admins only; everyone else gets 404, as if the page did not exist."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not can_view_all():
            abort(404)
        return view(*args, **kwargs)

    return wrapped


def admin_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not is_admin():
            abort(404)
        return view(*args, **kwargs)

    return wrapped

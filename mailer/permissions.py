"""Roles as Flask-Principal needs, and the one loader through which objects are reached."""
from functools import wraps

from flask import abort
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


def can_view_all() -> bool:
    return manager_permission.can()


def can_edit(obj) -> bool:
    """Owners change their own objects and admins anyone's; managers only look."""
    return obj.owner_id == current_user.id or admin_permission.can()


def get_owned_or_404(model, object_id, action: str = VIEW):
    """Return the object if the current user may act on it.

    An owner reaches only their own objects: anything else answers 404, so another user's
    object is never revealed. Managers may view everything but change nothing of others
    (403); admins may do everything.
    """
    obj = db.session.get(model, object_id)
    if obj is None:
        abort(404)
    if obj.owner_id == current_user.id or admin_permission.can():
        return obj
    if manager_permission.can():
        if action == VIEW:
            return obj
        abort(403)
    abort(404)


def manager_required(view):
    """Managers and admins only; everyone else gets 404, as if the page did not exist."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not manager_permission.can():
            abort(404)
        return view(*args, **kwargs)

    return wrapped


def admin_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not admin_permission.can():
            abort(404)
        return view(*args, **kwargs)

    return wrapped

"""Objects for walking every route: one of each kind, owned by the given user."""
from sqlalchemy import select

from mailer.extensions import db
from mailer.models import SenderIdentity
from tests.access.test_matrix import ID_ARGUMENTS, make_objects


def world_values(owner) -> dict[str, object]:
    """Argument values for every route: the ids of a new set of `owner`'s objects, "x" for the
    rest. Called again after requests that may have deleted some of them."""
    # make_objects numbers its addresses by the owner's clients, which the requests may have
    # deleted: the sender addresses of earlier sets step aside.
    for identity in db.session.scalars(select(SenderIdentity).where(SenderIdentity.owner_id == owner.id)):
        identity.email = f"earlier-{identity.id}@example.com"
    db.session.commit()
    ids = make_objects(owner)
    values = {name: ids[kind] for name, kind in ID_ARGUMENTS.items()}
    return DefaultValues(values)


class DefaultValues(dict):
    def __missing__(self, key):
        return "x"

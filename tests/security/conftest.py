"""Objects for walking every route: one of each kind, owned by the given user."""
from tests.access.test_matrix import ID_ARGUMENTS, make_objects


def world_values(owner) -> dict[str, object]:
    """Argument values for every route: the ids of `owner`'s objects, "x" for the rest."""
    ids = make_objects(owner)
    values = {name: ids[kind] for name, kind in ID_ARGUMENTS.items()}
    values.setdefault("name", "x")
    return DefaultValues(values)


class DefaultValues(dict):
    def __missing__(self, key):
        return "x"

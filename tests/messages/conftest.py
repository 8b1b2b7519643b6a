from tests.clients.conftest import admin, as_user, manager, other_user  # noqa: F401  (shared fixtures)

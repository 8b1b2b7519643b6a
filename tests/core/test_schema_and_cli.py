from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import select, text

from mailer.extensions import db
from mailer.models import Role, User


def exists_on(dialect: str):
    """Autogenerate's filter: an index declared for another database only (`ddl_if`) is not
    expected on this one."""

    def include(obj, name, type_, reflected, compare_to):
        condition = getattr(obj, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect)

    return include


def test_models_and_migrations_agree(app):
    db.drop_all()
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": exists_on(connection.dialect.name)}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_roles_seed_is_idempotent(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["roles", "seed"])
    second = runner.invoke(args=["roles", "seed"])
    assert first.exit_code == second.exit_code == 0
    assert sorted(db.session.scalars(select(Role.name))) == ["admin", "manager"]


def test_users_create_makes_a_confirmed_user_and_refuses_a_duplicate(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "Boss@Example.com", "--password", "long enough", "--role", "admin"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "boss@example.com"))
    assert user.is_confirmed and user.is_admin and user.check_password("long enough")

    again = runner.invoke(args=["users", "create", "boss@example.com", "--password", "long enough"])
    assert again.exit_code != 0
    assert "already exists" in again.output

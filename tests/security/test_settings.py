"""Settings that keep a real installation safe: the default configuration, the tests' own
database and Redis, and dependency pins that agree with each other."""

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from redis import Redis

from config import DEV_SECRET_KEY, DevelopmentConfig, ProductionConfig
from mailer import create_app, resolve_config
from mailer.models.user import hash_password
from tests.support import RedisServer

ROOT = Path(__file__).resolve().parents[2]


# Item: development settings must not be reachable by accident ----------------------------------


@pytest.fixture
def bare_environment(monkeypatch):
    for name in ("MAILER_CONFIG", "FLASK_CONFIG", "FLASK_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_without_settings_the_app_is_production_and_refuses_the_public_key(bare_environment):
    assert resolve_config(None) is ProductionConfig
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(SECRET_KEY=DEV_SECRET_KEY, SQLALCHEMY_DATABASE_URI="sqlite://")


def test_development_is_chosen_only_on_purpose(bare_environment):
    bare_environment.setenv("FLASK_DEBUG", "1")
    assert resolve_config(None) is DevelopmentConfig
    bare_environment.delenv("FLASK_DEBUG")
    bare_environment.setenv("MAILER_CONFIG", "development")
    assert resolve_config(None) is DevelopmentConfig


def test_outside_the_tests_passwords_are_hashed_with_scrypt():
    for config in (ProductionConfig, DevelopmentConfig):
        app = create_app(config, SECRET_KEY="a long random production key", SQLALCHEMY_DATABASE_URI="sqlite://")
        with app.app_context():
            assert hash_password("a long passphrase").startswith("scrypt:"), config


# Item: the tests never touch the database or Redis of DATABASE_URL / REDIS_URL, nor read .env ----


def test_a_test_run_leaves_the_database_and_redis_of_the_environment_alone(tmp_path):
    victim_db = tmp_path / "precious.db"
    with sqlite3.connect(victim_db) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        connection.execute("INSERT INTO users (email) VALUES ('keep@example.com')")
    victim_redis = RedisServer()
    try:
        Redis.from_url(victim_redis.url).set("precious", "1")
        environment = {name: value for name, value in os.environ.items() if not name.startswith("TEST_")}
        environment.update(DATABASE_URL=f"sqlite:///{victim_db}", REDIS_URL=victim_redis.url)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/auth/test_login.py::test_unknown_email_and_wrong_password_get_the_same_answer",
            ],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert Redis.from_url(victim_redis.url).get("precious") == b"1"
    finally:
        victim_redis.stop()
    with sqlite3.connect(victim_db) as connection:
        assert connection.execute("SELECT email FROM users").fetchall() == [("keep@example.com",)]


def test_importing_the_configuration_reads_no_env_file(tmp_path):
    shutil.copy(ROOT / "config.py", tmp_path / "config.py")
    (tmp_path / ".env").write_text("DATABASE_URL=sqlite:////tmp/someone-elses.db\n")
    environment = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", "import config; print(config.Config.SQLALCHEMY_DATABASE_URI)"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "someone-elses" not in result.stdout


# Item: the pins agree with what the pinned packages require -------------------------------------

PIN = re.compile(r"^(?P<requirement>[A-Za-z0-9_.\[\],-]+==[^\s#]+)")


def pinned_requirements() -> dict[str, Requirement]:
    pins = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            match = PIN.match(line.strip())
            if match:
                requirement = Requirement(match.group("requirement"))
                pins[canonical(requirement.name)] = requirement
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_login_throttle_storage_is_declared():
    # Flask-Limiter keeps its counters in Redis, which takes limits' redis extra.
    assert "redis" in pinned_requirements()["limits"].extras


def test_every_pinned_package_accepts_the_pinned_versions_of_its_dependencies():
    pins = pinned_requirements()
    conflicts = []
    for name, pin in pins.items():
        version = next(iter(pin.specifier)).version
        extras = pin.extras or {""}
        for line in metadata.requires(name) or []:
            needed = Requirement(line)
            if needed.marker and not any(needed.marker.evaluate({"extra": extra}) for extra in extras):
                continue
            dependency = pins.get(canonical(needed.name))
            if dependency is None:
                continue
            dependency_version = next(iter(dependency.specifier)).version
            if not needed.specifier.contains(dependency_version, prereleases=True):
                conflicts.append(f"{name}=={version} needs {needed}, pinned {dependency_version}")
    assert not conflicts, "\n".join(conflicts)

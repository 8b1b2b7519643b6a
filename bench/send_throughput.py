"""Sending throughput: Mailer's sending engine against the raw SMTP limit of the same sink.

    .venv/bin/python bench/send_throughput.py [--clients 10000] [--database-url URL] [--redis-url URL]

Creates N clients and one mailing for a throw-away owner, starts a minimal aiosmtpd sink in its
own process, sends the mailing with "Send now" and one in-process worker (rendering, claiming in
chunks, one SMTP connection per chunk, every delivery and attempt recorded), then sends N
pre-built messages with plain smtplib over one connection to the same sink: the raw limit.
Prints both rates and their ratio. The owner and everything it owns are deleted at the end.

DATABASE_URL and REDIS_URL are used when set; otherwise a temporary SQLite file and a Redis
server started for the run. The jobs go to a queue of their own, so running workers are not
disturbed.
"""
import argparse
import multiprocessing
import os
import secrets
import smtplib
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_sink(port: int, count_value, ready) -> None:
    """A minimal SMTP sink: accepts and counts, keeps nothing."""
    from aiosmtpd.controller import Controller

    class CountingHandler:
        async def handle_DATA(self, server, session, envelope):
            with count_value.get_lock():
                count_value.value += 1
            return "250 2.0.0 OK"

    controller = Controller(CountingHandler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def start_sink():
    port, count, ready = free_port(), multiprocessing.Value("i", 0), multiprocessing.Event()
    process = multiprocessing.Process(target=run_sink, args=(port, count, ready), daemon=True)
    process.start()
    if not ready.wait(30):
        raise SystemExit("the SMTP sink did not start")
    return process, port, count


def start_redis():
    from mailer.devtools import redis_server_binary, wait_for_redis
    from tests.support import RedisServer

    if redis_server_binary() is None:
        raise SystemExit("no redis-server found: set REDIS_URL")
    server = RedisServer()
    if not wait_for_redis(server.url, 15):
        raise SystemExit("the benchmark's Redis did not start")
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000, help="recipients (default 10000)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--chunk-size", type=int, default=None, help="SEND_CHUNK_SIZE (default: the setting's)")
    args = parser.parse_args()

    from sqlalchemy import delete, func, insert, select

    from config import database_url
    from mailer import create_app
    from mailer.extensions import db, rq
    from mailer.models import Client, Mailing, MailingAttempt, MailingRun, Message, Repeat, User, mailing_clients, utcnow
    from mailer.services import dispatch, schedule
    from mailer.services.rendering import MailRenderer, make_message_id

    temporary = tempfile.TemporaryDirectory(prefix="mailer-bench-")
    redis_server = None
    redis_url = args.redis_url
    if not redis_url:
        redis_server = start_redis()
        redis_url = redis_server.url
    uri = database_url(args.database_url, f"sqlite:///{temporary.name}/bench.db")
    sink_process, sink_port, sink_count = start_sink()

    overrides = {
        "SQLALCHEMY_DATABASE_URI": uri,
        "REDIS_URL": redis_url,
        "RQ_QUEUE": f"mailer-bench-{secrets.token_hex(4)}",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": sink_port,
        "MAIL_SUPPRESS_SEND": False,
        "SEND_JOBS_PER_RUN": 1,
        "EXTERNAL_URL": "https://mailer.example.com",
    }
    if args.chunk_size:
        overrides["SEND_CHUNK_SIZE"] = args.chunk_size
    app = create_app("testing", **overrides)
    with app.app_context():
        db.create_all()
        engine = db.engine.dialect.name
        owner = User(email=f"bench-{secrets.token_hex(6)}@example.com", password_hash="-", full_name="Bench")
        message = Message(owner=owner, subject="News for {{ name }}",
                          body_text="Hello {{ name }},\n\n" + "This month in our shop: new arrivals and offers.\n" * 12,
                          body_html="<p>Hello {{ name }},</p>" + "<p>This month in our shop: <b>new arrivals</b>.</p>" * 12)
        now = utcnow()
        mailing = Mailing(owner=owner, name="Benchmark", message=message, start_at=now, end_at=now, repeat=Repeat.NONE)
        db.session.add(mailing)
        db.session.flush()
        print(f"Creating {args.clients} clients on {engine} ...", flush=True)
        for start in range(0, args.clients, 5000):
            db.session.execute(insert(Client), [
                {"owner_id": owner.id, "email": f"client{number}@example.com", "full_name": f"Client {number}",
                 "comment": ""}
                for number in range(start, min(start + 5000, args.clients))
            ])
        db.session.execute(insert(mailing_clients).from_select(
            ["mailing_id", "client_id"], select(mailing.id, Client.id).where(Client.owner_id == owner.id)))
        schedule.reset_schedule(mailing, now)
        mailing.next_run_at = None  # sent by hand below, never by a dispatcher
        db.session.commit()
        owner_id, mailing_id = owner.id, mailing.id

        try:
            from rq import SimpleWorker

            # The raw limit: the same messages, built beforehand, over one plain smtplib
            # connection. Measured before and after the engine, on a shared machine; the faster
            # of the two counts, so the ratio errs on the low side.
            renderer = MailRenderer.for_message(db.session.get(Mailing, mailing_id).message)
            clients = db.session.scalars(select(Client).where(Client.owner_id == owner_id).order_by(Client.id)).all()
            prebuilt = [(client.email, renderer.build(client, make_message_id(number)).as_bytes())
                        for number, client in enumerate(clients)]
            db.session.rollback()

            def raw_send() -> float:
                started = time.perf_counter()
                with smtplib.SMTP("127.0.0.1", sink_port) as smtp:
                    for recipient, data in prebuilt:
                        smtp.sendmail("mailer@localhost", [recipient], data)
                return time.perf_counter() - started

            raw_before = raw_send()

            # The engine: Send now, then one worker sends the run.
            started = time.perf_counter()
            run_id = dispatch.start_manual_run(db.session.get(Mailing, mailing_id), None).id
            dispatch.enqueue_run(run_id)
            SimpleWorker([rq.queue], connection=rq.connection).work(burst=True, logging_level="WARNING")
            engine_seconds = time.perf_counter() - started
            db.session.remove()
            run = db.session.get(MailingRun, run_id)
            attempt_count = db.session.scalar(select(func.count()).select_from(MailingAttempt)
                                              .where(MailingAttempt.run_id == run_id))
            if run.sent_count != args.clients or attempt_count != args.clients:
                raise SystemExit(f"incomplete run: {run.sent_count} sent, {attempt_count} attempts recorded")
            sent = run.sent_count
            engine_rate = sent / engine_seconds

            raw_seconds = min(raw_before, raw_send())
            raw_rate = len(prebuilt) / raw_seconds
        finally:
            db.session.rollback()
            db.session.execute(delete(Mailing).where(Mailing.owner_id == owner_id))
            db.session.execute(delete(Message).where(Message.owner_id == owner_id))
            db.session.execute(delete(Client).where(Client.owner_id == owner_id))
            db.session.execute(delete(User).where(User.id == owner_id))
            db.session.commit()
            sink_process.terminate()
            if redis_server is not None:
                redis_server.stop()
            temporary.cleanup()

    size = sum(len(data) for _, data in prebuilt) // len(prebuilt)
    print(f"database {engine}, {args.clients} clients, chunk {app.config['SEND_CHUNK_SIZE']}, "
          f"message {size} bytes, sink received {sink_count.value} (engine + twice raw)")
    print(f"mailer:      {sent} sent in {engine_seconds:.2f} s = {engine_rate:.0f} msg/s "
          f"(every delivery and attempt recorded)")
    print(f"raw smtplib: {len(prebuilt)} sent in {raw_seconds:.2f} s = {raw_rate:.0f} msg/s")
    print(f"ratio: {engine_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()

"""RQ worker: builds the app once, pushes its context, and works the queue.

It outlives Redis restarts (it reconnects with back-off instead of exiting), and SIGTERM lets a
send job finish the messages in flight and hand the rest to other workers.
"""

import logging
import os
import signal
import time

from redis.exceptions import RedisError
from rq import Worker

from envfile import load_env_file

load_env_file()

# Mailer reads its settings from the environment just loaded.
from mailer import create_app  # noqa: E402
from mailer.extensions import rq  # noqa: E402
from mailer.services import shutdown  # noqa: E402

log = logging.getLogger("mailer.worker")
LONGEST_RECONNECT_DELAY = 30


class MailerWorker(Worker):
    """RQ's worker, whose warm shutdown reaches the job: SIGTERM to the worker is passed on to the
    work horse, where it becomes a stop request (`mailer.services.shutdown`) instead of killing it."""

    def setup_work_horse_signals(self):
        super().setup_work_horse_signals()
        shutdown.handle_sigterm()

    def handle_warm_shutdown_request(self):
        super().handle_warm_shutdown_request()
        shutdown.request()
        if self.horse_pid:
            try:
                os.kill(self.horse_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app()
    with app.app_context():
        delay = 1
        while not shutdown.requested():
            started = time.monotonic()
            try:
                MailerWorker([rq.queue], connection=rq.connection).work(with_scheduler=True)
            except RedisError as error:
                log.warning("Redis: %s", error)
            if shutdown.requested():
                break
            # The worker loop ended without a stop request: Redis went away. Between two tries a
            # SIGTERM simply ends the process.
            signal.signal(signal.SIGTERM, shutdown.request)
            signal.signal(signal.SIGINT, shutdown.request)
            if time.monotonic() - started > 60:
                delay = 1
            log.warning("Redis unreachable; the worker reconnects in %d s", delay)
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and not shutdown.requested():
                time.sleep(0.2)
            delay = min(delay * 2, LONGEST_RECONNECT_DELAY)


if __name__ == "__main__":
    main()

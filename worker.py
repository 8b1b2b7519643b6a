"""RQ worker: builds the app once, pushes its context, and works the queue."""
from rq import Worker

from mailer import create_app
from mailer.extensions import rq


def main() -> None:
    app = create_app()
    with app.app_context():
        worker = Worker([rq.queue], connection=rq.connection)
        worker.work(with_scheduler=True)


if __name__ == "__main__":
    main()

"""RQ worker: builds the app once, pushes its context, and works the queue."""
from envfile import load_env_file

load_env_file()

from rq import Worker  # noqa: E402  (the settings come from the environment just loaded)

from mailer import create_app  # noqa: E402
from mailer.extensions import rq  # noqa: E402


def main() -> None:
    app = create_app()
    with app.app_context():
        worker = Worker([rq.queue], connection=rq.connection)
        worker.work(with_scheduler=True)


if __name__ == "__main__":
    main()

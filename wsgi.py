"""WSGI entry point: `gunicorn wsgi:app`, and FLASK_APP for the flask command."""

from envfile import load_env_file

load_env_file()

from mailer import create_app  # noqa: E402  (the settings come from the environment just loaded)

app = create_app()

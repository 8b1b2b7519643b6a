"""Reads the `.env` file at the top of the checkout into the environment, for the entry points.

Imported first by `wsgi.py` and `worker.py`, before the configuration is; the `flask` command reads
the same file itself. Variables already set win over the file, and FLASK_SKIP_DOTENV=1 (the `flask`
command's own switch) skips it, as the tests do for the processes they start.
"""

import os
from pathlib import Path

from dotenv import load_dotenv

ENV_FILE = Path(__file__).resolve().parent / ".env"


def load_env_file() -> None:
    if os.environ.get("FLASK_SKIP_DOTENV", "").strip().lower() in {"1", "true", "yes", "on"}:
        return
    load_dotenv(ENV_FILE)

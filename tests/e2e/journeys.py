"""The live system the browser journeys drive (web, worker, scheduler and SMTP sink as `make dev`
runs them), and the steps every journey takes: logging in, reading a link from the Outbox."""

import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN = ("admin@example.com", "admin password 1")
MANAGER = ("manager@example.com", "manager password 1")
# Seconds the live system's SMTP sink takes to accept a message.
SMTP_DELAY = 0.05


class LiveSystem:
    """Web, worker, scheduler and SMTP sink as separate processes on a fresh SQLite database."""

    def __init__(self, folder: Path, redis_url: str):
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.outbox = folder / "outbox"
        self.logs = folder / "logs"
        self.logs.mkdir(parents=True)
        self.env = {
            **os.environ,
            "MAILER_CONFIG": "development",
            "MAILER_INSTANCE_DIR": str(folder / "instance"),
            "DATABASE_URL": f"sqlite:///{folder / 'e2e.db'}",
            "REDIS_URL": redis_url,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(free_port()),
            "OUTBOX_DIR": str(self.outbox),
            "EXTERNAL_URL": self.url,
            "SECRET_KEY": secrets.token_hex(32),
            "DISPATCH_INTERVAL": "1",
            # Small chunks and a relay that takes a moment per message, so that a person can
            # pause or cancel a run in the middle (tests/e2e/test_control_journeys.py).
            "SEND_CHUNK_SIZE": "5",
            "SEND_CONNECTIONS": "1",
            "SEND_RETRY_BASE_DELAY": "1",
            "FLASK_APP": "wsgi.py",
            # The journeys send more e-mails and log in more often from one address than a person
            # would; the limits themselves are tested in tests/security and tests/auth.
            "MAIL_LIMIT_PER_ADDRESS": "1000 per hour",
            "MAIL_LIMIT_PER_RECIPIENT": "1000 per hour",
        }
        self.processes: list[subprocess.Popen] = []
        self.log_files = []

    def flask(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "flask", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def spawn(self, name: str, *command: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # closed by stop()
        self.log_files.append(log)
        self.processes.append(subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def start(self) -> None:
        (self.folder / "instance").mkdir()
        self.flask("db", "upgrade")
        self.flask("roles", "seed")
        self.flask("users", "create", ADMIN[0], "--password", ADMIN[1], "--role", "admin")
        self.flask("users", "create", MANAGER[0], "--password", MANAGER[1], "--role", "manager")
        self.spawn("smtp", sys.executable, "-m", "flask", "dev", "smtp", "--delay", str(SMTP_DELAY))
        self.spawn("web", sys.executable, "-m", "flask", "run", "--host", "127.0.0.1", "--port", str(self.port))
        self.spawn("worker", sys.executable, "worker.py")
        self.spawn("scheduler", sys.executable, "-m", "flask", "scheduler", "run")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/auth/login", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        raise RuntimeError("the web process did not start:\n" + (self.logs / "web.log").read_text())

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in self.log_files:
            log.close()


def log_in(page, email: str, password: str) -> None:
    page.goto("/auth/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")


def link_from_outbox(admin, recipient: str, subject: str, path: str) -> str:
    """Wait for the worker to send the message, open it in the Outbox and read its link."""
    row = admin.locator("tr", has_text=recipient).filter(has_text=subject)
    for _ in range(75):
        admin.goto("/outbox")
        if row.count():
            break
        admin.wait_for_timeout(200)
    row.first.locator("a").click()
    return admin.locator(f"pre a[href*='{path}']").first.get_attribute("href")


def local_input_time(moment) -> str:
    """The value of a datetime-local input (the journeys' users are on UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M")

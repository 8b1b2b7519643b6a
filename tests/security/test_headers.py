"""Security headers on every response, and pages that need no inline script or style."""

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from mailer.models import Role
from tests.access.test_matrix import ROUTES, is_hidden, world_values
from tests.factories import make_user
from tests.support import free_port, login, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_a_private_page_carries_the_security_headers(logged_in):
    response = logged_in.get("/clients/")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"


def test_public_pages_carry_them_too_and_static_files_stay_cacheable(client):
    login_page = client.get("/auth/login")
    assert login_page.headers["X-Frame-Options"] == "DENY" and login_page.headers["Cache-Control"] == "no-store"
    stylesheet = client.get("/static/mailer.css")
    assert stylesheet.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" not in stylesheet.headers.get("Cache-Control", "")


INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=", re.IGNORECASE)


def test_every_page_satisfies_the_policy_without_inline_code(app, client):
    """No inline script, style element, style attribute or event handler on any page a person
    opens (the policy would block them); the admin panel and RQ dashboard are exempt."""
    admin = make_user("admin@example.com", role=Role.ADMIN)
    values = world_values(admin)
    offenders = []
    for who in ("anonymous", "admin"):
        if who == "admin":
            login(client, admin.email)
        for route in ROUTES:
            if is_hidden(route) or "GET" not in route.methods:
                continue
            path = route.path(values)
            response = client.get(path)
            if response.mimetype != "text/html" or "sandbox" in response.headers.get("Content-Security-Policy", ""):
                continue
            found = INLINE.search(response.get_data(as_text=True))
            if found:
                offenders.append(f"GET {path} ({who}): {found.group(0)!r}")
    assert not offenders, "\n".join(offenders)


def test_gunicorn_does_not_name_the_software_and_closes_each_connection(tmp_path):
    # The worker boots through gunicorn.conf.py's post_worker_init (mailer.serving.prepare_worker).
    port = free_port()
    environment = {
        "PATH": "/usr/bin:/bin",
        "MAILER_CONFIG": "testing",
        "FLASK_SKIP_DOTENV": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}",
        "MAILER_INSTANCE_DIR": str(tmp_path),
    }
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def answer():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/auth/login", timeout=2)
            except OSError:
                return None

        response = wait_until(answer, timeout=60, interval=0.2)
        server = response.headers.get("Server", "")
        assert "gunicorn" not in server.lower() and server == "Mailer"
        # No keep-alive: the next request goes to whichever worker is free (gunicorn.conf.py).
        assert response.headers.get("Connection") == "close"
    finally:
        web.terminate()
        web.wait(timeout=10)

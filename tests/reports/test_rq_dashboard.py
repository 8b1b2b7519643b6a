"""The RQ dashboard: admins only, on the app's own Redis, with CSRF on its actions."""

import pytest
from redis import Redis

from mailer.extensions import rq
from tests.factories import make_user
from tests.support import login


def demo_job() -> None:
    """Enqueued by the tests so the dashboard has something to show."""


@pytest.mark.parametrize("role", [None, "owner", "manager"])
def test_everyone_but_an_admin_gets_404(app, client, role):
    if role:
        make_user(f"{role}@example.com", role=None if role == "owner" else role)
        login(client, f"{role}@example.com")
    for path in ["/rq", "/rq/", "/rq/0/view/workers", "/rq/0/data/queues.json", "/rq/static/css/main.css"]:
        assert client.get(path, follow_redirects=False).status_code == 404, path
    # Not even a CSRF error on its actions gives the dashboard away.
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/rq/queue/mailer/queued/empty").status_code == 404


def test_an_admin_sees_the_queues_of_the_apps_redis(app, client):
    make_user("admin@example.com", role="admin")
    login(client, "admin@example.com")
    assert app.config["RQ_DASHBOARD_REDIS_URL"] == (app.config["REDIS_URL"],)
    rq.queue.enqueue(demo_job)

    assert client.get("/rq").location == "/rq/"
    page = client.get("/rq/")
    assert page.status_code == 200
    assert b"RQ dashboard" in page.data
    queues = client.get("/rq/0/data/queues.json").get_json()
    assert {"name": app.config["RQ_QUEUE"], "count": 1} in [
        {"name": q["name"], "count": q["count"]} for q in queues["queues"]
    ]
    assert client.get("/rq/7/view").status_code == 404


def test_the_navbar_links_admins_to_the_dashboard(client):
    make_user("admin@example.com", role="admin")
    login(client, "admin@example.com")
    assert b'href="/rq/"' in client.get("/reports/").data
    make_user("manager@example.com", role="manager")
    other = client.application.test_client()
    login(other, "manager@example.com")
    assert b'href="/rq/"' not in other.get("/reports/").data


def test_dashboard_actions_need_the_csrf_token_it_hands_out(app, client, redis_url):
    make_user("admin@example.com", role="admin")
    login(client, "admin@example.com")
    rq.queue.enqueue(demo_job)
    app.config["WTF_CSRF_ENABLED"] = True
    empty = f"/rq/queue/{app.config['RQ_QUEUE']}/queued/empty"

    assert client.post(empty).status_code == 400
    assert rq.queue.count == 1

    client.get("/rq/")
    token = client.get_cookie("_csrf_token", path="/rq")
    assert token is not None and not token.http_only
    assert client.post(empty, headers={"X-CSRFToken": token.value}).status_code == 200
    assert Redis.from_url(redis_url).llen(f"rq:queue:{app.config['RQ_QUEUE']}") == 0

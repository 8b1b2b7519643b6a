"""The client picker in a real browser: filter, "select all shown", "select none", saved choice."""

import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from mailer.extensions import db
from mailer.models import Mailing
from mailer.services import mailings as mailing_service
from tests.factories import PASSWORD, add_clients, add_message
from tests.support import client_ids

pytestmark = pytest.mark.e2e


@pytest.fixture
def browser_page(app, browser):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    context = browser.new_context(
        base_url=f"http://127.0.0.1:{server.server_port}", viewport={"width": 390, "height": 844}
    )
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()
        server.shutdown()
        thread.join(timeout=10)


def logged_in(page, user):
    page.goto("/auth/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    return page


def test_filter_then_select_all_shown_on_a_phone(browser_page, owner):
    message = add_message(owner)
    add_clients(owner, 1500, prefix="shop")
    wanted = add_clients(owner, 12, prefix="vip")
    page = logged_in(browser_page, owner)

    page.goto("/mailings/new")
    page.fill("input[name=name]", "VIP evening")
    page.select_option("select[name=message]", str(message.id))
    counter = page.locator("[data-count]")
    assert counter.inner_text() == "0 of 1512 selected"

    page.fill("[data-filter]", "vip")
    assert page.locator("[data-list] label:visible").count() == 12
    page.click("[data-select=all]")
    assert counter.inner_text() == "12 of 1512 selected"
    # Clearing the filter keeps the choice; the other clients were never ticked.
    page.fill("[data-filter]", "")
    assert page.locator("[data-list] label:visible").count() == 1512
    page.check(f"input[name=clients][value='{wanted[0].id - 1}']")
    assert counter.inner_text() == "13 of 1512 selected"
    page.click("[data-select=none]")
    assert counter.inner_text() == "0 of 1512 selected"
    page.fill("[data-filter]", "vip 1")
    page.click("[data-select=all]")
    assert counter.inner_text() == "3 of 1512 selected"  # vip1, vip10, vip11

    page.fill("input[name=start_at]", "2030-05-01T09:00")
    page.fill("input[name=end_at]", "2030-05-08T09:00")
    page.click("input[type=submit][value='Save mailing']")
    page.wait_for_url("**/mailings/*")
    assert "VIP evening" in page.inner_text("h1")

    mailing = db.session.scalar(select(Mailing))
    assert client_ids(mailing) == {
        c.id for c in wanted if c.email in {"vip1@example.com", "vip10@example.com", "vip11@example.com"}
    }


def test_a_large_account_pastes_addresses_on_a_phone(browser_page, owner, monkeypatch):
    monkeypatch.setattr(mailing_service, "CLIENT_LIST_LIMIT", 10)
    message = add_message(owner)
    shop = add_clients(owner, 11, prefix="shop")
    page = logged_in(browser_page, owner)

    page.goto("/mailings/new")
    assert page.locator("input[name=clients]").count() == 0
    assert page.is_checked("input[name=recipients][value=all]")
    assert not page.is_visible("textarea[name=client_addresses]")  # shown with its choice only
    page.check("input[name=recipients][value=addresses]")
    page.fill("textarea[name=client_addresses]", f"Shop Two <{shop[2].email}>\n{shop[7].email}")
    page.fill("input[name=name]", "Two shops")
    page.select_option("select[name=message]", str(message.id))
    page.fill("input[name=start_at]", "2030-05-01T09:00")
    page.click("input[type=submit][value='Save mailing']")
    page.wait_for_url("**/mailings/*")

    mailing = db.session.scalar(select(Mailing))
    assert client_ids(mailing) == {shop[2].id, shop[7].id}

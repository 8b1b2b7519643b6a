import re

import pytest

from tests.e2e.journeys import ADMIN, log_in

# One live system serves the journeys: they stay together on one pytest-xdist worker.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("live-system")]


def register_confirmed_owner(live_system, email: str, password: str) -> None:
    live_system.flask("users", "create", email, "--password", password)


def test_admin_opens_the_panel_and_the_queues_an_owner_gets_404(new_page, live_system):
    admin = new_page()
    log_in(admin, *ADMIN)
    admin.wait_for_url(re.compile(r"/$"))
    response = admin.goto("/admin/")
    assert response.status == 200
    response = admin.goto("/rq/")
    assert response.status == 200

    register_confirmed_owner(live_system, "plain-owner@example.com", "owner password 1")
    owner = new_page()
    log_in(owner, "plain-owner@example.com", "owner password 1")
    owner.wait_for_url(re.compile(r"/$"))
    assert "Admin" not in owner.locator("nav").inner_text()
    assert owner.goto("/admin/").status == 404
    assert owner.goto("/rq/").status == 404

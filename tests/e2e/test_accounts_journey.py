import re

import pytest

from tests.e2e.journeys import ADMIN, link_from_outbox, log_in

# One live system serves the journeys: they stay together on one pytest-xdist worker.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("live-system")]


def test_register_confirm_through_the_outbox_log_in_and_reset_password(new_page):
    person = new_page()
    person.goto("/")
    person.click("text=Create an account")
    person.fill("input[name=email]", "journey@example.com")
    person.fill("input[name=password]", "journey password")
    person.fill("input[name=password_again]", "journey password")
    person.fill("input[name=full_name]", "Jo Urney")
    person.select_option("select[name=country]", "NL")
    person.select_option("select[name=timezone]", "Europe/Amsterdam")
    person.click("input[type=submit]")
    assert "sent a confirmation link" in person.content()

    log_in(person, "journey@example.com", "journey password")
    assert "Confirm your e-mail address first" in person.content()

    # The admin reads the captured message in the Outbox and hands the link over.
    admin = new_page()
    log_in(admin, *ADMIN)
    admin.wait_for_url(re.compile(r"/$"))
    link = link_from_outbox(admin, "journey@example.com", "Confirm your e-mail address", "/auth/confirm/")

    person.goto(link)
    assert "is confirmed" in person.content()
    log_in(person, "journey@example.com", "journey password")
    person.wait_for_url(re.compile(r"/$"))
    assert "Jo Urney" in person.content()

    person.goto("/auth/profile")
    person.fill("input[name=phone]", "+31 20 123 4567")
    person.click("form[action$='/auth/profile'] input[type=submit]")
    assert "Profile saved." in person.content()

    person.click("text=Log out")
    person.goto("/auth/reset")
    person.fill("input[name=email]", "journey@example.com")
    person.click("input[type=submit]")
    person.wait_for_url(re.compile(r"/auth/login"))  # the form answers with a redirect
    assert "a link to reset its password is on its way" in person.content()
    link = link_from_outbox(admin, "journey@example.com", "Reset your password", "/auth/reset/")
    person.goto(link)
    person.fill("input[name=password]", "a new journey password")
    person.fill("input[name=password_again]", "a new journey password")
    person.click("input[type=submit]")
    assert "Your password is changed" in person.content()
    log_in(person, "journey@example.com", "a new journey password")
    person.wait_for_url(re.compile(r"/$"))
    assert "Hello, Jo Urney" in person.content()

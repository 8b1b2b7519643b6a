import re

import pytest

from tests.e2e.journeys import ADMIN, link_from_outbox, log_in
from tests.e2e.test_mailing_journeys import register_and_confirm, write_message

# One live system serves the journeys: they stay together on one pytest-xdist worker.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("live-system")]


def test_an_admin_adds_a_server_and_an_owner_sends_from_a_confirmed_address(new_page, live_system):
    admin = new_page()
    log_in(admin, *ADMIN)
    admin.goto("/admin/smtp-servers/new/")
    admin.fill("input[name=name]", "Second relay")
    admin.fill("input[name=host]", "127.0.0.1")
    admin.fill("input[name=port]", live_system.env["MAIL_PORT"])
    admin.select_option("select[name=security]", "none", force=True)  # a Select2 box hides the select
    admin.fill("input[name=rate_limit]", "50 per second; 10000 per hour")
    admin.click("input[type=submit][value=Save]")
    # The row of the server just added (other journeys add servers to the same live system).
    test_link = admin.locator("tr", has_text="Second relay").locator("a[title='Test connection']")
    test_link.click()
    admin.wait_for_url(re.compile(r"/admin/smtp-servers/check/\d+$"))
    admin.click("button:has-text('Test connection')")
    assert "The server is ready to send." in admin.content()
    assert "The server greeted: “220 " in admin.content()

    owner, outbox_reader = new_page(), new_page()
    register_and_confirm(owner, outbox_reader, "sender-journey@example.com", "sender journey password")
    owner.click("text=Senders")
    owner.click("text=Add a sender address")
    owner.fill("input[name=name]", "Spring Shop")
    owner.fill("input[name=email]", "news@пример.рф")
    owner.click("input[type=submit]")
    assert "Waiting for confirmation" in owner.content()
    owner.goto(
        link_from_outbox(
            outbox_reader, "news@xn--e1afmkfd.xn--p1ai", "Confirm your sender address", "/senders/confirm/"
        )
    )
    assert "news@пример.рф is confirmed" in owner.content()

    owner.goto("/clients/new")
    owner.fill("input[name=email]", "тест@пример.рф")
    owner.fill("input[name=full_name]", "Тест")
    owner.click("input[type=submit]")
    write_message(owner, "Spring catalogue")
    owner.goto("/mailings/new")
    owner.fill("input[name=name]", "From the shop")
    owner.select_option("select[name=message]", label="Spring catalogue")
    owner.check("input[name=clients]")
    owner.select_option("select[name=sender_identity]", label="Spring Shop <news@пример.рф>")
    owner.select_option("select[name=smtp_server]", label="Second relay")
    owner.click("input[type=submit][value='Save mailing']")
    owner.wait_for_url(re.compile(r"/mailings/\d+$"))
    details = owner.locator("dl").inner_text()
    assert "Spring Shop <news@пример.рф>" in details and "Second relay" in details

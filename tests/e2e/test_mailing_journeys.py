import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.journeys import ADMIN, MANAGER, link_from_outbox, local_input_time, log_in

# One live system serves the journeys: they stay together on one pytest-xdist worker.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("live-system")]

CLIENTS_CSV = """email,full_name,comment
ann@example.com,Ann Archer,first
ben@example.com,Ben Baker,
not-an-address,Broken Row,
cat@example.com,Cat Cooper,third
"""


def register_and_confirm(person, admin, email: str, password: str) -> None:
    person.goto("/auth/register")
    person.fill("input[name=email]", email)
    person.fill("input[name=password]", password)
    person.fill("input[name=password_again]", password)
    person.click("input[type=submit]")
    log_in(admin, *ADMIN)
    person.goto(link_from_outbox(admin, email, "Confirm your e-mail address", "/auth/confirm/"))
    log_in(person, email, password)
    person.wait_for_url(re.compile(r"/$"))


def write_message(page, subject: str) -> None:
    page.goto("/messages/new")
    page.fill("input[name=subject]", subject)
    page.fill("textarea[name=body_text]", "Hello {{ name }}, the spring catalogue is out.")
    page.fill("textarea[name=body_html]", "<p>Hello <b>{{ name }}</b>, the spring catalogue is out.</p>")
    page.click("input[type=submit][value='Save message']")
    page.wait_for_url(re.compile(r"/messages/\d+$"))


def create_mailing(page, name: str, subject: str, start: datetime) -> None:
    page.goto("/mailings/new")
    page.fill("input[name=name]", name)
    page.select_option("select[name=message]", label=subject)
    page.click("button[data-select=all]")
    page.fill("input[name=start_at]", local_input_time(start))
    page.fill("input[name=end_at]", local_input_time(start + timedelta(days=7)))
    page.select_option("select[name=repeat]", "none")
    page.click("input[type=submit][value='Save mailing']")
    page.wait_for_url(re.compile(r"/(mailings|runs)/\d+$"))


def test_owner_imports_clients_sends_a_mailing_and_reads_its_report(new_page, live_system, output_dir):
    person, admin = new_page(), new_page()
    register_and_confirm(person, admin, "sender@example.com", "sender password")

    person.goto("/clients/import")
    person.set_input_files(
        "input[name=file]", files=[{"name": "clients.csv", "mimeType": "text/csv", "buffer": CLIENTS_CSV.encode()}]
    )
    person.click("input[type=submit][value=Import]")
    assert "3 added" in person.locator("main").inner_text()
    problem = person.locator("tbody tr").first
    assert problem.locator("td").first.inner_text() == "4"

    write_message(person, "Spring catalogue")
    create_mailing(person, "Spring", "Spring catalogue", datetime.now(UTC) - timedelta(minutes=1))

    # A mailing saved with a start that has come opens on its run, which the page follows live.
    person.wait_for_url(re.compile(r"/runs/\d+"))
    person.locator("#run-status", has_text="Done").wait_for(timeout=30_000)
    assert person.locator("[data-count=sent]").inner_text() == "3"

    person.goto("/reports/")
    person.click("text=Spring")
    person.locator("a[href*='/runs/']").first.click()
    attempts = person.locator("table tbody tr")
    attempts.first.wait_for()
    assert attempts.count() == 3
    assert attempts.filter(has_text="250").count() == 3

    with person.expect_download() as download_info:
        person.click("text=Download CSV")
    rows = list(csv.DictReader(io.StringIO(open(download_info.value.path(), encoding="utf-8-sig").read())))
    assert sorted(row_email(row) for row in rows) == ["ann@example.com", "ben@example.com", "cat@example.com"]

    # The messages really left: the SMTP sink kept one per client.
    received = sorted(
        path.read_text(errors="replace")
        for path in live_system.outbox.glob("*.eml")
        if "Spring catalogue" in path.read_text(errors="replace")
    )
    assert len(received) == 3


def row_email(row: dict) -> str:
    return next(value for key, value in row.items() if "mail" in key.lower() or "recipient" in key.lower())


def test_manager_disables_a_mailing_and_blocks_its_owner(new_page, live_system):
    live_system.flask("users", "create", "watched@example.com", "--password", "watched password")
    owner = new_page()
    log_in(owner, "watched@example.com", "watched password")
    owner.wait_for_url(re.compile(r"/$"))
    owner.goto("/clients/new")
    owner.fill("input[name=email]", "dora@example.com")
    owner.fill("input[name=full_name]", "Dora Dunn")
    owner.click("input[type=submit]")
    write_message(owner, "Autumn news")
    create_mailing(owner, "Autumn", "Autumn news", datetime.now(UTC) + timedelta(days=1))

    manager = new_page()
    log_in(manager, *MANAGER)
    manager.wait_for_url(re.compile(r"/$"))
    manager.goto("/mailings/")
    manager.click("text=Autumn")
    manager.click("text=Disable…")
    manager.fill("textarea[name=reason]", "The prices in it are wrong")
    manager.click("button:has-text('Disable')")
    assert "disabled" in manager.locator("main").inner_text().lower()
    owner.goto("/mailings/")
    owner.click("text=Autumn")
    assert "Reason: “The prices in it are wrong”" in owner.locator("main").inner_text()

    manager.goto("/users/")
    manager.locator("tr", has_text="watched@example.com").locator("text=Block…").click()
    manager.fill("textarea[name=reason]", "Complaints about spam")
    manager.click("button:has-text('Block')")
    assert manager.locator("tr", has_text="watched@example.com").locator(".badge", has_text="blocked").count() == 1

    # The owner's next click tells them, before they type a password.
    owner.click("nav >> text=Mailings")
    owner.wait_for_url(re.compile(r"/auth/login"))
    told = owner.locator("main").inner_text()
    assert "Your account has been blocked by a manager" in told and "Complaints about spam" in told

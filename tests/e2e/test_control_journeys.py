"""Browser journeys of mailing control: Send now on a "Once" mailing, pause / resume / cancel /
send to the rest, the live preview, layouts on a phone and a desktop, and Cyrillic search.
Copies are counted in what the SMTP sink received, never in the app's own records."""

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest

from tests.e2e.journeys import MANAGER, local_input_time, log_in

# One live system serves the journeys: they stay together on one pytest-xdist worker.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("live-system")]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}


def new_owner(live_system, new_page, email: str, viewport=None):
    live_system.flask("users", "create", email, "--password", "owner password 1")
    page = new_page(viewport)
    log_in(page, email, "owner password 1")
    page.wait_for_url(re.compile(r"/$"))
    return page


def import_clients(page, rows: list[tuple[str, str]]) -> None:
    csv = "email,full_name\n" + "".join(f"{email},{name}\n" for email, name in rows)
    page.goto("/clients/import")
    page.set_input_files(
        "input[name=file]", files=[{"name": "clients.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )
    page.click("input[type=submit][value=Import]")
    assert f"{len(rows)} added" in page.locator("main").inner_text()


def write_message(page, subject: str, text: str = "Hello {{ name }}, news for you.") -> None:
    page.goto("/messages/new")
    page.fill("input[name=subject]", subject)
    page.fill("textarea[name=body_text]", text)
    page.click("input[type=submit][value='Save message']")
    page.wait_for_url(re.compile(r"/messages/\d+$"))


def create_mailing(
    page, name: str, subject: str, start: datetime | None, repeat: str = "none", end: datetime | None = None
) -> None:
    """Save a mailing to every client; `start` None means "send as soon as it is saved"."""
    page.goto("/mailings/new")
    page.fill("input[name=name]", name)
    page.select_option("select[name=message]", label=subject)
    page.click("button[data-select=all]")
    if start is None:
        page.check("input[name=when][value=now]")
    else:
        page.fill("input[name=start_at]", local_input_time(start))
    if end is not None:
        page.fill("input[name=end_at]", local_input_time(end))
    page.select_option("select[name=repeat]", repeat)
    page.click("#submit")
    page.wait_for_url(re.compile(r"/(mailings|runs)/\d+$"))


def received(live_system, subject: str) -> Counter:
    """How many messages with this subject each address received, read from the sink's files."""
    copies = Counter()
    for path in live_system.outbox.glob("*.eml"):
        mail = message_from_bytes(path.read_bytes())
        if subject in str(make_header(decode_header(mail["Subject"]))):
            copies[mail["X-Envelope-To"]] += 1
    return copies


def count(page, name: str) -> int:
    return int(page.locator(f"#run-progress [data-count={name}]").inner_text())


def wait_until(page, condition, what: str, tries: int = 150) -> None:
    for _ in range(tries):
        if condition():
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"gave up waiting until {what}")


def test_send_now_on_a_once_mailing_sends_exactly_one_copy_per_client(new_page, live_system):
    person = new_owner(live_system, new_page, "once@example.com")
    clients = [(f"once{n}@example.com", f"Once Client {n}") for n in range(4)]
    import_clients(person, clients)
    write_message(person, "Once only {{ name }}")
    # Scheduled for the next minute but one: Send now goes first, then the schedule's time passes.
    start = (datetime.now(UTC) + timedelta(seconds=80)).replace(second=0, microsecond=0)
    create_mailing(person, "Once", "Once only [name]", start)
    mailing_url = person.url

    person.click("text=Send now…")
    confirmation = person.locator("#send-now-summary").inner_text()
    assert "Send to 4 clients now" in confirmation and "has not been sent yet" in confirmation
    assert "replaces its scheduled send" in confirmation
    person.click("button:has-text('Send to 4 clients now')")
    person.wait_for_url(re.compile(r"/runs/\d+$"))
    person.locator("#run-status", has_text="Done").wait_for(timeout=30_000)

    # Let the scheduled time pass, with the scheduler dispatching every second.
    wait_until(person, lambda: datetime.now(UTC) > start + timedelta(seconds=5), "the start passed", tries=800)
    person.goto(mailing_url)
    assert "1 in all" in person.locator("main").inner_text()
    assert received(live_system, "Once only") == {email: 1 for email, _ in clients}


def test_pause_resume_cancel_and_send_to_the_rest_reach_every_client_once(new_page, live_system):
    person = new_owner(live_system, new_page, "control@example.com")
    clients = [(f"control{n}@example.com", f"Control Client {n}") for n in range(60)]
    import_clients(person, clients)
    write_message(person, "Control news")
    create_mailing(person, "Control", "Control news", datetime.now(UTC) + timedelta(days=2))
    person.click("text=Send now…")
    person.click("button:has-text('Send to 60 clients now')")
    person.wait_for_url(re.compile(r"/runs/\d+$"))
    run_url = person.url

    # The counters move while it sends; pause in the middle.
    wait_until(person, lambda: count(person, "sent") > 0, "the first messages were sent")
    person.click("button:has-text('Pause')")
    person.locator("button:has-text('Resume')").wait_for()
    assert person.locator("#run-status").inner_text() == "Paused"
    # Once the chunk in the worker's hands is done the page stops following: nothing is sending.
    wait_until(person, lambda: count(person, "sending") == 0, "the chunk in hand was recorded")
    sent_while_paused = count(person, "sent")
    assert 0 < sent_while_paused < 60
    assert sum(received(live_system, "Control news").values()) == sent_while_paused

    person.click("button:has-text('Resume')")
    wait_until(person, lambda: count(person, "sent") > sent_while_paused, "sending went on")
    person.click("button:has-text('Cancel')")
    rest_button = person.locator("button:has-text('Send to the rest')")
    rest_button.wait_for()
    assert person.locator("#run-status").inner_text() == "Cancelled"
    sent_before_cancel = count(person, "sent")
    assert sent_before_cancel < 60 and count(person, "sending") == 0
    assert f"({60 - sent_before_cancel})" in rest_button.inner_text()

    rest_button.click()
    person.wait_for_url(re.compile(r"/runs/\d+$"))
    assert person.url != run_url
    person.locator("#run-status", has_text="Done").wait_for(timeout=30_000)
    assert count(person, "sent") == 60 - sent_before_cancel
    assert received(live_system, "Control news") == {email: 1 for email, _ in clients}


def test_the_preview_shows_a_personalised_sample_with_the_footer_while_typing(new_page, live_system):
    person = new_owner(live_system, new_page, "preview@example.com")
    import_clients(person, [("ann.preview@example.com", "Ann Archer"), ("ben.preview@example.com", "Ben Baker")])
    person.goto("/messages/new")
    person.fill("input[name=subject]", "Catalogue for {{ name }}")
    person.fill("textarea[name=body_text]", "Dear {{ name }}, the catalogue is out.")
    person.fill("textarea[name=body_html]", "<p>Dear <b>{{ name }}</b>, the catalogue is out.</p>")
    preview = person.locator("#message-preview")
    preview.locator("[data-preview=text]", has_text="Dear Ann Archer, the catalogue is out.").wait_for()
    text = preview.locator("[data-preview=text]").inner_text()
    assert "To stop receiving these e-mails, unsubscribe here: " in text
    assert preview.locator("[data-header=Subject]").inner_text() == "Catalogue for Ann Archer"
    assert preview.locator("[data-header=To]").inner_text() == "Ann Archer <ann.preview@example.com>"
    assert "/unsubscribe/" in preview.locator("[data-header=List-Unsubscribe]").inner_text()
    html = person.frame_locator("#message-preview iframe[data-preview=html]").locator("body")
    assert "Dear Ben" not in html.inner_text() and "Dear Ann Archer" in html.inner_text()
    assert "Unsubscribe" in html.inner_text()

    person.select_option("#preview-client", label="Ben Baker <ben.preview@example.com>")
    preview.locator("[data-preview=text]", has_text="Dear Ben Baker").wait_for()
    # It follows the typing too, before anything is saved.
    person.fill("textarea[name=body_text]", "Hi {{ name }}! Changed.")
    preview.locator("[data-preview=text]", has_text="Hi Ben Baker! Changed.").wait_for()


def visible_columns(page, table_selector: str, columns: list[str]) -> None:
    """Each key column's header lies inside the window, and the page does not scroll sideways."""
    width = page.viewport_size["width"]
    for column in columns:
        box = page.locator(f"{table_selector} th[data-column={column}]").bounding_box()
        assert box is not None and box["width"] > 0, f"{column} is hidden at {width} px"
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{column} is off screen at {width} px: {box}"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    wrapper_overflow = page.evaluate(f"""() => {{
        const table = document.querySelector('{table_selector}');
        const wrapper = table.closest('.table-responsive') || table.parentElement;
        return wrapper.scrollWidth - wrapper.clientWidth;
    }}""")
    assert wrapper_overflow <= 1, f"the table scrolls sideways by {wrapper_overflow} px at {width} px"


def test_lists_keep_their_key_columns_on_a_phone_and_a_desktop(new_page, live_system):
    person = new_owner(live_system, new_page, "layout.owner.with.a.long.address@example.com")
    import_clients(person, [("a.very.long.address.for.layout.checks@example.com", "Layla Long-Named Client")])
    write_message(person, "A message with a rather long subject line for {{ name }}")
    create_mailing(
        person,
        "Layout mailing with a fairly long name",
        "A message with a rather long subject line for [name]",
        datetime.now(UTC) + timedelta(days=3),
        repeat="weekly",
        end=datetime.now(UTC) + timedelta(days=60),
    )
    mailing_columns = ["name", "status", "next_run", "sent", "failed"]
    for viewport in (PHONE, DESKTOP):
        page = new_page(viewport)
        log_in(page, "layout.owner.with.a.long.address@example.com", "owner password 1")
        page.wait_for_url(re.compile(r"/$"))
        page.goto("/mailings/")
        visible_columns(page, "main table", mailing_columns)
        page.goto("/reports/")
        visible_columns(page, "main table", ["name", "status", "sent", "failed"])

    manager = new_page(DESKTOP)
    log_in(manager, *MANAGER)
    manager.wait_for_url(re.compile(r"/$"))
    manager.goto("/mailings/")
    visible_columns(manager, "main table", mailing_columns)
    manager.goto("/reports/")
    visible_columns(manager, "main table", ["name", "status", "sent", "failed"])


def test_cyrillic_search_finds_names_in_either_case(new_page, live_system):
    person = new_owner(live_system, new_page, "cyrillic@example.com")
    import_clients(person, [("ivan@example.com", "Иван Петров"), ("olga@example.com", "Ольга Смирнова")])
    for search in ("Иван", "иван", "ИВАН"):
        person.goto("/clients/")
        person.fill("input[name=q]", search)
        person.keyboard.press("Enter")
        person.wait_for_url(re.compile(r"q="))
        rows = person.locator("main table tbody tr")
        assert rows.count() == 1 and "Иван Петров" in rows.first.inner_text(), search

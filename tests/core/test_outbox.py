"""The development Outbox: every captured message, a page at a time, with a search."""

from pathlib import Path

from mailer.models import Role
from tests.factories import make_user
from tests.support import login


def capture(folder: Path, number: int, to: str, subject: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{number:012d}.eml").write_text(
        f"From: Mailer <mailer@localhost>\r\nTo: {to}\r\nX-Envelope-To: {to}\r\nSubject: {subject}\r\n\r\nHi\r\n"
    )


def test_the_outbox_pages_through_every_message_and_searches_them(app, client):
    app.config["SHOW_OUTBOX"] = True
    folder = Path(app.config["OUTBOX_DIR"])
    for number in range(150):
        capture(folder, number, f"person{number}@example.com", f"Message {number}")
    capture(folder, 150, "ivan@example.com", "Привет, Иван")
    admin = make_user("admin@example.com", role=Role.ADMIN)
    login(client, admin.email)

    first = client.get("/outbox").text
    assert "Привет, Иван" in first and "Message 51<" in first and "Message 50<" not in first
    assert "Older &rarr;" in first
    second = client.get("/outbox?page=2").text
    assert "Message 50<" in second and "Message 0<" in second and "Older &rarr;" not in second

    found = client.get("/outbox", query_string={"q": "иван"}).text
    assert "Привет, Иван" in found and "Message 1<" not in found
    assert "person149@example.com" in client.get("/outbox?q=PERSON149").text
    assert "No message to or about" in client.get("/outbox?q=nobody-at-all").text

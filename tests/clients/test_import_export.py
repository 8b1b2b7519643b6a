import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import select

from mailer.extensions import db
from mailer.models import Client
from mailer.services import client_import
from tests.factories import add_client


def upload(
    browser,
    content: str | bytes,
    on_existing: str = "skip",
    filename: str = "clients.csv",
    follow_redirects: bool = False,
):
    data = content.encode() if isinstance(content, str) else content
    return browser.post(
        "/clients/import",
        data={"file": (io.BytesIO(data), filename), "on_existing": on_existing},
        content_type="multipart/form-data",
        follow_redirects=follow_redirects,
    )


def clients_of(owner) -> dict[str, tuple[str, str]]:
    rows = db.session.scalars(select(Client).where(Client.owner_id == owner.id))
    return {c.email: (c.full_name, c.comment) for c in rows}


def problem_rows(html: str) -> list[tuple[int, str]]:
    import re

    return [
        (int(line), reason)
        for line, reason in re.findall(r"<tr><td>(\d+)</td><td class=\"text-break\">([^<]*)</td></tr>", html)
    ]


def test_import_page_explains_the_file(logged_in):
    page = logged_in.get("/clients/import")
    assert page.status_code == 200
    assert b"full_name" in page.data and b'enctype="multipart/form-data"' in page.data


def test_valid_rows_are_imported_and_invalid_ones_reported_with_their_lines(logged_in, user):
    content = (
        "email,full_name,comment\n"  # line 1
        "Ada@Example.com,Ada Lovelace,first\n"  # 2
        "not-an-address,Nobody,\n"  # 3
        "\n"  # 4 (blank, ignored)
        "alan@example.com,,no name\n"  # 5
        '"grace@example.com","Grace Hopper","two\nlines"\n'  # 6-7
        ",Missing Mail,\n"  # 8
        "ADA@example.com,Ada Again,\n"  # 9
        "linus@example.com,Linus\n"  # 10 (short row: no comment)
    )
    response = upload(logged_in, content)
    # The result has its own address: reloading it shows the result and imports nothing again.
    assert response.status_code == 302 and response.location.startswith("/clients/import/")
    html = logged_in.get(response.location).get_data(as_text=True)
    assert (
        "Import finished: 3 added, 0 updated, 0 skipped (already there), 1 duplicate in the file, 3 invalid."
    ) in html
    again = logged_in.get(response.location).get_data(as_text=True)
    assert "Import finished" not in again and "3</div>added" in again and "1</div>duplicates in the file" in again
    assert clients_of(user) == {
        "ada@example.com": ("Ada Lovelace", "first"),
        "grace@example.com": ("Grace Hopper", "two\nlines"),
        "linus@example.com": ("Linus", ""),
    }
    problems = problem_rows(html)
    assert [line for line, _ in problems] == [3, 5, 8, 9]
    reasons = dict(problems)
    assert "the e-mail &#39;not-an-address&#39; is not valid: An email address must have an @-sign." == reasons[3]
    assert reasons[5] == "Enter the client&#39;s full name."
    assert reasons[8] == "Enter an e-mail address."
    assert reasons[9] == "duplicate: the e-mail ada@example.com is already on line 2"


def test_existing_clients_are_skipped_or_updated_as_chosen(logged_in, user):
    add_client(user, "ada@example.com", "Ada", "kept comment")
    content = "email,name\nada@example.com,Ada King\nalan@example.com,Alan Turing\n"

    skipped = upload(logged_in, content, "skip", follow_redirects=True).get_data(as_text=True)
    assert "1 added, 0 updated, 1 skipped" in skipped
    assert clients_of(user) == {"ada@example.com": ("Ada", "kept comment"), "alan@example.com": ("Alan Turing", "")}

    updated = upload(
        logged_in, content.replace("Alan Turing", "Alan M. Turing"), "update", follow_redirects=True
    ).get_data(as_text=True)
    assert "0 added, 2 updated, 0 skipped" in updated
    # The file has no comment column: the comments stay as they were.
    assert clients_of(user) == {
        "ada@example.com": ("Ada King", "kept comment"),
        "alan@example.com": ("Alan M. Turing", ""),
    }


def test_other_owners_clients_are_not_touched(logged_in, user, other_owner):
    add_client(other_owner, "ada@example.com", "Their Ada", "theirs")
    upload(logged_in, "email,full_name,comment\nada@example.com,My Ada,mine\n", "update")
    assert clients_of(other_owner) == {"ada@example.com": ("Their Ada", "theirs")}
    assert clients_of(user) == {"ada@example.com": ("My Ada", "mine")}


def test_spreadsheet_flavours_are_read(logged_in, user):
    content = "\ufeffE-mail;Full Name;Notes\r\nada@example.com;Ada Lovelace;x\r\n"
    response = upload(logged_in, content.encode("utf-8"), follow_redirects=True)
    assert response.status_code == 200
    assert clients_of(user) == {"ada@example.com": ("Ada Lovelace", "x")}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "The file is empty."),
        (b"email,full_name\n", "The file has a header row but no clients under it."),
        (
            b"mail address,who\nada@example.com,Ada\n",
            "must name the columns email and full_name (or name); it has mail address, who.",
        ),
        ("email,full_name\nada@example.com,Zoë\n".encode("latin-1"), "The file is not UTF-8 text."),
    ],
)
def test_a_file_that_cannot_be_imported_is_a_field_error(logged_in, user, content, message):
    response = upload(logged_in, content)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert clients_of(user) == {}


def test_a_file_is_required(logged_in):
    response = logged_in.post("/clients/import", data={"on_existing": "skip"}, content_type="multipart/form-data")
    assert response.status_code == 400 and b"Choose a CSV file." in response.data


def large_file(rows: int, bad_every: int) -> str:
    lines = ["email,full_name,comment"]
    for number in range(rows):
        if number % bad_every == 0:
            lines.append(f"broken-{number},Person {number},")
        else:
            lines.append(f"person{number}@example.com,Person {number},row {number}")
    return "\n".join(lines) + "\n"


def test_a_large_file_is_imported_by_the_worker_with_progress(app, logged_in, user, work):
    add_client(user, "person1@example.com", "Old Name")
    rows = client_import.SYNC_MAX_ROWS + 600
    response = upload(logged_in, large_file(rows, bad_every=1000), "update", filename="big.csv")
    assert response.status_code == 302
    status_url = response.location
    assert status_url.startswith("/clients/import/")
    import_id = status_url.rsplit("/", 1)[1]
    saved = Path(app.instance_path) / "imports" / f"{import_id}.csv"
    assert saved.exists()
    # Nothing is imported inside the request.
    assert len(clients_of(user)) == 1

    waiting = logged_in.get(status_url)
    assert waiting.status_code == 200
    assert waiting.headers["Refresh"] == "3"
    assert "Waiting for a worker" in waiting.get_data(as_text=True)
    assert f"0 of {rows:,} rows read" in waiting.get_data(as_text=True)

    work()

    done = logged_in.get(status_url)
    html = done.get_data(as_text=True)
    assert "Refresh" not in done.headers
    assert "The import is finished." in html
    assert f"{rows:,} of {rows:,} rows read" in html
    invalid_numbers = list(range(0, rows, 1000))
    assert [line for line, _ in problem_rows(html)] == [number + 2 for number in invalid_numbers]
    imported = clients_of(user)
    assert len(imported) == rows - len(invalid_numbers)
    assert imported["person1@example.com"] == ("Person 1", "row 1")
    status = client_import.read_status(import_id)
    assert (status.created, status.updated, status.skipped, status.invalid) == (
        rows - len(invalid_numbers) - 1,
        1,
        0,
        len(invalid_numbers),
    )
    assert not saved.exists()


def test_an_import_status_belongs_to_its_owner(as_user, logged_in, user, other_owner, admin):
    response = upload(logged_in, large_file(client_import.SYNC_MAX_ROWS + 1, bad_every=10**9))
    assert response.status_code == 302
    assert as_user(other_owner).get(response.location).status_code == 404
    assert logged_in.get("/clients/import/does-not-exist").status_code == 404


def test_export_streams_the_owners_clients(logged_in, user, other_owner):
    ada = add_client(user, "ada@example.com", "Ada Lovelace", "likes, commas")
    add_client(user, "evil@example.com", '=HYPERLINK("http://x")', "+1")
    add_client(other_owner, "theirs@example.com", "Not Mine")
    response = logged_in.get("/clients/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    assert 'filename="clients.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["email"] for row in rows] == ["ada@example.com", "evil@example.com"]
    assert rows[0]["full_name"] == "Ada Lovelace" and rows[0]["comment"] == "likes, commas"
    assert rows[0]["created_at"] == ada.created_at.isoformat()
    # A spreadsheet must not run a cell as a formula.
    assert rows[1]["full_name"] == '\'=HYPERLINK("http://x")' and rows[1]["comment"] == "'+1"


def test_an_export_can_be_imported_again(logged_in, user, other_owner, as_user):
    for number in range(3):
        add_client(user, f"c{number}@example.com", f"Client {number}", f"note {number}")
    exported = logged_in.get("/clients/export.csv").get_data()
    response = upload(as_user(other_owner), exported, follow_redirects=True)
    assert "3 added" in response.get_data(as_text=True)
    assert clients_of(other_owner) == clients_of(user)


def test_a_background_import_that_cannot_run_says_so(app, logged_in, user, work):
    response = upload(logged_in, large_file(client_import.SYNC_MAX_ROWS + 1, bad_every=10**9))
    import_id = response.location.rsplit("/", 1)[1]
    (Path(app.instance_path) / "imports" / f"{import_id}.csv").unlink()
    work()
    page = logged_in.get(response.location)
    assert "Refresh" not in page.headers
    stopped = "The import stopped: The uploaded file is no longer on the server; upload it again."
    assert stopped in page.get_data(as_text=True)
    assert clients_of(user) == {}

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from mailer.extensions import db
from mailer.models import Mailing, Message
from mailer.services import messages as message_service
from tests.factories import add_message
from tests.support import page_link

VALID = {"subject": "Spring news for {{ name }}", "body_text": "Hello {{ name }},\nwe have news.", "body_html": ""}


def count_messages() -> int:
    return db.session.scalar(select(func.count(Message.id)))


def subjects_on(page) -> list[str]:
    return re.findall(r'<a href="/messages/\d+">([^<]+)</a>', page.get_data(as_text=True))


def test_empty_list_says_what_to_do(logged_in):
    page = logged_in.get("/messages/")
    assert b"You have no messages yet" in page.data and b'href="/messages/new"' in page.data


def test_create_then_show(logged_in, user):
    response = logged_in.post("/messages/new", data={**VALID, "body_html": "<p>Hello <b>{{ name }}</b></p>"})
    assert response.status_code == 302
    message = db.session.scalar(select(Message))
    assert (message.owner_id, message.subject, message.body_html) == (
        user.id,
        "Spring news for {{ name }}",
        "<p>Hello <b>{{ name }}</b></p>",
    )
    page = logged_in.get(response.location).get_data(as_text=True)
    assert "Hello {{ name }},\nwe have news." in page
    assert "&lt;p&gt;Hello &lt;b&gt;{{ name }}&lt;/b&gt;&lt;/p&gt;" in page  # as written
    # As a client sees it: a sandboxed document of its own, with its own policy.
    assert f'sandbox src="/messages/{message.id}/preview"' in page
    preview = logged_in.get(f"/messages/{message.id}/preview")
    assert preview.get_data(as_text=True).startswith("<p>Hello <b>Ada Lovelace</b></p>")
    assert "Unsubscribe" in preview.get_data(as_text=True)
    assert "sandbox" in preview.headers["Content-Security-Policy"]


def test_empty_html_is_stored_as_none(logged_in):
    logged_in.post("/messages/new", data={**VALID, "body_html": "   "})
    assert db.session.scalar(select(Message.body_html)) is None


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("subject", "", "Enter a subject."),
        ("subject", "Hello\r\nBcc: victim@example.com", "The subject must be on one line."),
        ("subject", "Hello\nworld", "The subject must be on one line."),
        ("subject", "x" * 256, "The subject has at most 255 characters."),
        ("subject", "Hello {{ name ", "Template error"),
        ("subject", "Hello {{ password }}", "unknown placeholder"),
        ("body_text", "", "Enter the text of the message."),
        ("body_text", "x" * 1024 * 1024, "The text is too long: at most 200,000 characters (it has 1,048,576)."),
        ("body_text", "{% for x in y %}{% endfor %}", "loops"),
        ("body_html", "<p>" + "x" * 1024 * 1024 + "</p>", "The HTML is too long"),
        ("body_html", "<p>{{ name.__class__ }}</p>", "Template error"),
    ],
)
def test_bad_input_re_renders_the_form_with_the_message(logged_in, user, field, value, message):
    response = logged_in.post("/messages/new", data={**VALID, field: value})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert 'class="invalid-feedback' in response.get_data(as_text=True)
    assert count_messages() == 0
    # The same on edit: nothing changes.
    existing = add_message(user, subject="Kept")
    response = logged_in.post(f"/messages/{existing.id}/edit", data={**VALID, field: value})
    assert response.status_code == 400
    db.session.refresh(existing)
    assert existing.subject == "Kept"


@pytest.mark.parametrize(
    "dirty, gone, kept",
    [
        ('<p>Hi</p><script>alert("x")</script>', ["<script", "alert("], ["<p>Hi</p>"]),
        (
            '<img src="https://example.com/a.png" onerror="alert(1)" alt="logo">',
            ["onerror", "alert("],
            ['src="https://example.com/a.png"', 'alt="logo"'],
        ),
        ('<a href="javascript:alert(1)">click</a>', ["javascript:", "alert("], [">click</a>"]),
        (
            '<a href="JaVaScRiPt:alert(1)">x</a><a href="https://example.com/">site</a>',
            ["avascript", "alert("],
            ['href="https://example.com/"', 'rel="noopener noreferrer"'],
        ),
        (
            '<div onclick="steal()" style="color: red; position: fixed">x</div>',
            ["onclick", "steal", "position"],
            ['style="color:red"'],
        ),
        (
            '<iframe src="https://evil.example"></iframe><form action="/x"><input name="a"></form>',
            ["<iframe", "<form", "<input"],
            [],
        ),
        (
            '<table border="1" cellpadding="4"><tr><td bgcolor="#eee"><strong>Total</strong></td></tr></table>',
            [],
            ['<table border="1" cellpadding="4">', '<td bgcolor="#eee">', "<strong>Total</strong>"],
        ),
        ('<a href="{{ unsubscribe_url }}">Leave</a>', [], ['href="{{ unsubscribe_url }}"']),
    ],
)
def test_html_is_sanitised_when_saved(logged_in, dirty, gone, kept):
    response = logged_in.post("/messages/new", data={**VALID, "body_html": dirty})
    assert response.status_code == 302
    stored = db.session.scalar(select(Message.body_html)) or ""
    for text in gone:
        assert text not in stored
    for text in kept:
        assert text in stored
    assert "alert(" not in logged_in.get(response.location).get_data(as_text=True)


def test_html_with_nothing_safe_left_is_dropped():
    assert message_service.sanitize_html("<script>alert(1)</script>") is None


def test_edit_saves_the_changes(logged_in, user):
    message = add_message(user, subject="Old")
    page = logged_in.get(f"/messages/{message.id}/edit")
    assert page.status_code == 200 and b'value="Old"' in page.data
    response = logged_in.post(f"/messages/{message.id}/edit", data={**VALID, "subject": "New subject"})
    assert response.status_code == 302
    db.session.refresh(message)
    assert message.subject == "New subject"


def test_delete_asks_then_deletes(logged_in, user):
    message = add_message(user)
    assert b"This cannot be undone" in logged_in.get(f"/messages/{message.id}/delete").data
    assert logged_in.post(f"/messages/{message.id}/delete").status_code == 302
    assert count_messages() == 0


def make_mailing(owner, message, name) -> Mailing:
    now = datetime.now(UTC)
    mailing = Mailing(owner_id=owner.id, name=name, message_id=message.id, start_at=now, end_at=now + timedelta(days=1))
    db.session.add(mailing)
    db.session.commit()
    return mailing


def test_deleting_a_message_in_use_is_refused_with_the_mailings_listed(logged_in, user):
    message = add_message(user)
    make_mailing(user, message, "Spring news")
    make_mailing(user, message, "Summer news")
    page = logged_in.get(f"/messages/{message.id}/delete").get_data(as_text=True)
    assert "cannot be deleted: 2 mailings use it" in page
    assert "Spring news" in page and "Summer news" in page
    assert 'type="submit">Delete' not in page
    response = logged_in.post(f"/messages/{message.id}/delete")
    assert response.status_code == 409
    assert "This message is used by 2 mailings (Spring news, Summer news)" in response.get_data(as_text=True)
    assert count_messages() == 1


def test_a_mailing_created_meanwhile_is_caught_by_the_database(app, user):
    message = add_message(user)
    make_mailing(user, message, "Racing")
    original = message_service.mailings_using
    calls = []

    def nothing_the_first_time(msg):
        calls.append(msg)
        return [] if len(calls) == 1 else original(msg)

    message_service.mailings_using = nothing_the_first_time
    try:
        with pytest.raises(message_service.MessageInUse) as raised:
            message_service.delete_message(message)
    finally:
        message_service.mailings_using = original
    assert [m.name for m in raised.value.mailings] == ["Racing"]
    db.session.commit()
    assert count_messages() == 1


def test_search_sort_and_pages(logged_in, user):
    for number in range(30):
        add_message(user, subject=f"Letter {number:02}")
    add_message(user, subject="100% off")
    assert subjects_on(logged_in.get("/messages/?q=%25")) == ["100% off"]
    first = logged_in.get("/messages/?q=letter&sort=subject")
    assert subjects_on(first) == [f"Letter {n:02}" for n in range(25)]
    second = logged_in.get(page_link(first))
    assert subjects_on(second) == [f"Letter {n:02}" for n in range(25, 30)]
    assert subjects_on(logged_in.get("/messages/?q=letter&sort=-subject"))[0] == "Letter 29"
    assert subjects_on(logged_in.get("/messages/?sort=-created"))[0] == "100% off"


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/messages/{id}"),
        ("get", "/messages/{id}/edit"),
        ("post", "/messages/{id}/edit"),
        ("get", "/messages/{id}/delete"),
        ("post", "/messages/{id}/delete"),
        ("post", "/messages/{id}/test"),
    ],
)
def test_another_owners_message_answers_404(logged_in, other_owner, method, path):
    theirs = add_message(other_owner, subject="Theirs")
    response = getattr(logged_in, method)(path.format(id=theirs.id), data=VALID)
    assert response.status_code == 404
    db.session.refresh(theirs)
    assert theirs.subject == "Theirs"


def test_own_list_hides_other_owners(logged_in, user, other_owner):
    add_message(user, subject="Mine")
    add_message(other_owner, subject="Theirs")
    page = logged_in.get(f"/messages/?owner={other_owner.id}")
    assert subjects_on(page) == ["Mine"] and b"Owner</th>" not in page.data


def test_manager_sees_all_with_owner_filter_and_changes_nothing(as_user, manager, user, other_owner):
    mine = add_message(user, subject="Owner's letter")
    add_message(other_owner, subject="Other letter")
    browser = as_user(manager)
    page = browser.get("/messages/").get_data(as_text=True)
    assert sorted(subjects_on(browser.get("/messages/"))) == ["Other letter", "Owner&#39;s letter"]
    assert "Owner</th>" in page and f"/messages/{mine.id}/edit" not in page
    assert subjects_on(browser.get(f"/messages/?owner={other_owner.id}")) == ["Other letter"]
    detail = browser.get(f"/messages/{mine.id}").get_data(as_text=True)
    assert f"/messages/{mine.id}/test" not in detail and f"/messages/{mine.id}/edit" not in detail
    assert browser.get(f"/messages/{mine.id}/edit").status_code == 403
    assert browser.post(f"/messages/{mine.id}/edit", data=VALID).status_code == 403
    assert browser.post(f"/messages/{mine.id}/delete").status_code == 403
    assert browser.post(f"/messages/{mine.id}/test").status_code == 403
    assert count_messages() == 2


def test_admin_edits_and_deletes_anyones_message(as_user, admin, user):
    message = add_message(user, subject="Owner's letter")
    browser = as_user(admin)
    assert browser.post(f"/messages/{message.id}/edit", data={**VALID, "subject": "Fixed"}).status_code == 302
    db.session.refresh(message)
    assert message.subject == "Fixed" and message.owner_id == user.id
    assert browser.post(f"/messages/{message.id}/delete").status_code == 302
    assert count_messages() == 0

"""The preview: the message as a chosen client receives it, footer and headers included, for
unsaved content (the live preview of the form) and on the message page; readable names."""

from mailer.extensions import db
from mailer.models import Client, Mailing, Message, Repeat, utcnow
from tests.factories import make_user
from tests.support import login

CONTENT = {
    "subject": "Spring news for {{ name }}",
    "body_text": "Hello {{ name }}, your address is {{ email }}.",
    "body_html": "<p>Hello <b>{{ name }}</b></p><script>alert(1)</script>",
}


def add_client(owner, email, name, **fields) -> Client:
    client = Client(owner_id=owner.id, email=email, full_name=name, **fields)
    db.session.add(client)
    db.session.commit()
    return client


def test_the_live_preview_renders_unsaved_content_for_the_chosen_client_with_footer_and_headers(app, logged_in, user):
    add_client(user, "ann@example.com", "Ann Archer")
    ivan = add_client(user, "ivan@example.com", "Иван Петров")

    html = logged_in.post("/messages/preview", data={**CONTENT, "preview_client": ivan.id}).text

    assert 'data-header="To">Иван Петров &lt;ivan@example.com&gt;' in html
    assert 'data-header="Subject">Spring news for Иван Петров<' in html
    assert 'data-header="List-Unsubscribe">&lt;http://mailer.test/unsubscribe/' in html
    assert 'data-header="List-Unsubscribe-Post">List-Unsubscribe=One-Click<' in html
    assert "Hello Иван Петров, your address is ivan@example.com." in html
    assert "To stop receiving these e-mails, unsubscribe here: http://mailer.test/unsubscribe/" in html
    # The HTML as stored (sanitised), with its footer, in a sandboxed frame.
    assert "sandbox srcdoc=" in html and "&lt;b&gt;Иван Петров&lt;/b&gt;" in html
    assert "Unsubscribe&lt;/a&gt; to stop receiving" in html and "alert(1)" not in html
    assert db.session.query(Message).count() == 0  # nothing was saved


def test_without_a_choice_the_first_client_is_used_then_a_sample_person(app, logged_in, user):
    sample = logged_in.post("/messages/preview", data=CONTENT).text
    assert "Hello Ada Lovelace, your address is ada@example.com." in sample
    add_client(user, "ann@example.com", "Ann Archer")
    first = logged_in.post("/messages/preview", data=CONTENT).text
    assert "Hello Ann Archer, your address is ann@example.com." in first


def test_another_owners_client_is_never_previewed(app, logged_in, user):
    other = make_user("other@example.com")
    secret = add_client(other, "secret@example.com", "Secret Person")
    html = logged_in.post("/messages/preview", data={**CONTENT, "preview_client": secret.id}).text
    assert "secret@example.com" not in html and "Ada Lovelace" in html


def test_a_broken_template_is_explained_not_a_500(app, logged_in):
    response = logged_in.post("/messages/preview", data={**CONTENT, "body_text": "Hello {{ nmae }}"})
    assert response.status_code == 200
    assert "unknown placeholder {{ nmae }}" in response.text


def test_the_preview_needs_the_csrf_token(app, user):
    app.config["WTF_CSRF_ENABLED"] = True
    browser = app.test_client()
    login(browser, user.email)
    assert browser.post("/messages/preview", data=CONTENT).status_code == 400


def test_an_owner_cannot_preview_with_another_owners_clients(app, logged_in):
    other = make_user("other@example.com")
    assert logged_in.post(f"/messages/preview?owner={other.id}", data=CONTENT).status_code == 404


def test_the_message_page_shows_the_message_as_a_chosen_client_receives_it(app, logged_in, user):
    add_client(user, "ann@example.com", "Ann Archer")
    ben = add_client(user, "ben@example.com", "Ben Baker")
    message = Message(owner_id=user.id, subject=CONTENT["subject"], body_text=CONTENT["body_text"])
    db.session.add(message)
    db.session.commit()

    page = logged_in.get(f"/messages/{message.id}").text
    assert "<title>Spring news for [name]" in page
    assert "Hello Ann Archer, your address is ann@example.com." in page and "unsubscribe here:" in page
    chosen = logged_in.get(f"/messages/{message.id}?client={ben.id}").text
    assert "Hello Ben Baker, your address is ben@example.com." in chosen
    assert f'<option value="{ben.id}" selected>' in chosen


def test_lists_and_pickers_name_messages_without_template_syntax(app, logged_in, user):
    message = Message(
        owner_id=user.id, subject="Hi {{ name|upper }} – {% if email %}news{% endif %}", body_text="Hello"
    )
    client = add_client(user, "ann@example.com", "Ann Archer")
    db.session.add(message)
    db.session.flush()
    mailing = Mailing(
        owner=user,
        name="Spring",
        message=message,
        start_at=utcnow(),
        end_at=utcnow(),
        repeat=Repeat.NONE,
        clients=[client],
    )
    db.session.add(mailing)
    db.session.commit()
    readable = "Hi [NAME] – news"
    for path in ("/messages/", "/mailings/", f"/mailings/{mailing.id}", "/mailings/new", f"/messages/{message.id}"):
        page = logged_in.get(path).text
        assert readable in page, path
        assert "{{ name" not in page.split("As written")[0], path

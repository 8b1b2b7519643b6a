from mailer.extensions import db
from mailer.models import utcnow
from tests.factories import add_client, add_message
from tests.support import free_port


def test_test_send_reaches_the_owner_rendered_for_their_first_client(logged_in, user, work, smtp_sink):
    gone = add_client(user, "gone@example.com", "Gone Person")
    gone.unsubscribed_at = utcnow()
    add_client(user, "ada@example.com", "Ada Lovelace")
    add_client(user, "alan@example.com", "Alan Turing")
    message = add_message(
        user,
        subject="News for {{ name }}",
        body_text="Dear {{ name }} <{{ email }}>,\nhello.",
        body_html="<p>Dear <b>{{ name }}</b></p>",
    )
    db.session.commit()

    response = logged_in.post(f"/messages/{message.id}/test")
    assert response.status_code == 302 and response.location == f"/messages/{message.id}"
    page = logged_in.get(response.location).get_data(as_text=True)
    assert "is on its way to owner@example.com" in page
    assert smtp_sink.received == []  # sent by the worker, not by the request

    work()
    [mail] = smtp_sink.wait_for(1)
    assert mail.recipients == ["owner@example.com"]
    assert "ada@example.com" not in mail.recipients
    assert mail.subject == "[Test] News for Ada Lovelace"
    assert "Dear Ada Lovelace <ada@example.com>," in mail.text
    assert "<b>Ada Lovelace</b>" in mail.html
    assert mail.message["Message-ID"].endswith("@mailer.localhost>")


def test_test_send_without_clients_uses_the_owner_as_sample(logged_in, user, work, smtp_sink):
    user.full_name = "Olga Owner"
    message = add_message(user, subject="Hi {{ name }}", body_text="For {{ email }}")
    logged_in.post(f"/messages/{message.id}/test")
    work()
    [mail] = smtp_sink.wait_for(1)
    assert mail.recipients == ["owner@example.com"]
    assert mail.subject == "[Test] Hi Olga Owner"
    assert "For owner@example.com" in mail.text


def test_admin_test_goes_to_the_admin(as_user, admin, user, work, smtp_sink):
    message = add_message(user, subject="Owner's message")
    browser = as_user(admin)
    assert browser.post(f"/messages/{message.id}/test").status_code == 302
    work()
    [mail] = smtp_sink.wait_for(1)
    assert mail.recipients == ["admin@example.com"]


def test_test_send_needs_post(logged_in, user):
    message = add_message(user)
    assert logged_in.get(f"/messages/{message.id}/test").status_code == 405


def test_unreachable_queue_is_a_clear_message(app, logged_in, user, smtp_sink):
    message = add_message(user)
    # The queue's Redis stops answering: nothing listens on this port.
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    app.extensions.pop("rq_redis", None)
    response = logged_in.post(f"/messages/{message.id}/test", follow_redirects=True)
    assert response.status_code == 200
    assert b"The test could not be sent right now" in response.data


def test_a_test_can_go_to_another_address_and_a_bad_one_is_explained(logged_in, user, work, smtp_sink):
    add_client(user, "ada@example.com", "Ada Lovelace")
    message = add_message(user, subject="News for {{ name }}", body_text="Dear {{ name }}")
    db.session.commit()

    response = logged_in.post(
        f"/messages/{message.id}/test", data={"to": "Colleague@Example.com"}, follow_redirects=True
    )
    assert "is on its way to colleague@example.com" in response.text
    work()
    [mail] = smtp_sink.wait_for(1)
    assert mail.recipients == ["colleague@example.com"] and mail.subject == "[Test] News for Ada Lovelace"

    refused = logged_in.post(f"/messages/{message.id}/test", data={"to": "not an address"}, follow_redirects=True)
    assert "The test cannot be sent to “not an address”" in refused.text
    work()
    assert len(smtp_sink.received) == 1

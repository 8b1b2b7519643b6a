import io
from datetime import timedelta

from freezegun import freeze_time
from PIL import Image

from mailer.extensions import db
from mailer.models import utcnow
from tests.factories import PASSWORD
from tests.support import links_in, local_path, login


def reset_link(sink, address):
    mails = sink.to(address)
    assert len(mails) == 1
    return local_path(next(link for link in links_in(mails[0]) if "/auth/reset/" in link))


def test_password_reset_flow_works_once(client, user, smtp_sink, work):
    response = client.post("/auth/reset", data={"email": user.email.upper()})
    assert response.status_code == 302
    work()
    link = reset_link(smtp_sink, user.email)

    assert client.get(link).status_code == 200
    response = client.post(link, data={"password": "new password 123", "password_again": "new password 123"})
    assert response.status_code == 302
    assert login(client, user.email).status_code == 200  # the old password no longer works
    assert login(client, user.email, "new password 123").status_code == 302

    client.post("/auth/logout")
    response = client.post(
        link, data={"password": "third password", "password_again": "third password"}, follow_redirects=True
    )
    assert b"invalid, has expired or was already used" in response.data
    db.session.refresh(user)
    assert user.check_password("new password 123")


def test_reset_link_expires(client, user, smtp_sink, work):
    client.post("/auth/reset", data={"email": user.email})
    work()
    link = reset_link(smtp_sink, user.email)
    with freeze_time(utcnow() + timedelta(hours=2)):
        response = client.get(link, follow_redirects=True)
    assert b"invalid, has expired or was already used" in response.data


def test_reset_for_unknown_address_answers_the_same_and_sends_nothing(client, smtp_sink, work):
    response = client.post("/auth/reset", data={"email": "nobody@example.com"}, follow_redirects=True)
    assert b"If an account uses this address" in response.data
    work()
    assert smtp_sink.received == []


def test_profile_edit(logged_in, user):
    response = logged_in.post(
        "/auth/profile",
        data={"full_name": "Olga Owner", "phone": "+44 20 7946 0000", "country": "GB", "timezone": "Europe/London"},
    )
    assert response.status_code == 302
    db.session.refresh(user)
    assert (user.full_name, user.country, user.timezone) == ("Olga Owner", "GB", "Europe/London")
    response = logged_in.post("/auth/profile", data={"timezone": "Mars/Olympus", "country": "GB"})
    assert response.status_code == 400 and b"is-invalid" in response.data
    db.session.refresh(user)
    assert user.timezone == "Europe/London"


def test_change_email_is_confirmed_at_the_new_address(logged_in, user, smtp_sink, work):
    response = logged_in.post("/auth/profile/email", data={"email": "new@example.com", "password": PASSWORD})
    assert response.status_code == 302
    db.session.refresh(user)
    assert user.email == "owner@example.com"
    work()
    mail = smtp_sink.to("new@example.com")[0]
    link = local_path(next(link for link in links_in(mail) if "/auth/profile/email/" in link))
    logged_in.get(link)
    db.session.refresh(user)
    assert user.email == "new@example.com"
    assert b"invalid, has expired or was already used" in logged_in.get(link, follow_redirects=True).data


def test_change_email_needs_the_password(logged_in, user, smtp_sink, work):
    response = logged_in.post("/auth/profile/email", data={"email": "new@example.com", "password": "wrong"})
    assert response.status_code == 400 and b"The current password is wrong." in response.data
    work()
    assert smtp_sink.received == []


def test_change_password_needs_the_current_one(logged_in, user):
    response = logged_in.post(
        "/auth/profile/password",
        data={"current_password": "wrong", "password": "another secret", "password_again": "another secret"},
    )
    assert response.status_code == 400
    db.session.refresh(user)
    assert user.check_password(PASSWORD)


def png_bytes(size=(64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_avatar_upload_and_display(logged_in, user):
    response = logged_in.post(
        "/auth/profile/avatar", data={"avatar": (io.BytesIO(png_bytes()), "me.png")}, content_type="multipart/form-data"
    )
    assert response.status_code == 302
    db.session.refresh(user)
    picture = logged_in.get(f"/auth/avatar/{user.id}")
    assert picture.status_code == 200 and picture.data.startswith(b"\x89PNG")


def test_avatar_that_is_not_an_image_is_refused(logged_in, user):
    fake = b"<?php echo 'hi'; ?>" * 10
    response = logged_in.post(
        "/auth/profile/avatar", data={"avatar": (io.BytesIO(fake), "me.png")}, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert b"not an image we can read" in response.data
    db.session.refresh(user)
    assert user.avatar_filename is None


def test_avatar_too_large_is_refused(app, logged_in, user):
    app.config["AVATAR_MAX_BYTES"] = 10_000
    big = png_bytes((1500, 1500)) + b"\0" * 20_000
    response = logged_in.post(
        "/auth/profile/avatar", data={"avatar": (io.BytesIO(big), "big.png")}, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert b"too large" in response.data
    db.session.refresh(user)
    assert user.avatar_filename is None

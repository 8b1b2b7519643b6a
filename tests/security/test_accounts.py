"""Accounts: avatars, passwords, e-mail changes, throttles and what the pages reveal."""
import io

from PIL import Image

from mailer.extensions import db
from tests.conftest import login, make_user


def png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def upload(client, data: bytes):
    return client.post("/auth/profile/avatar", data={"avatar": (io.BytesIO(data), "me.png")},
                       content_type="multipart/form-data")


def test_an_image_of_too_many_pixels_is_refused_before_it_is_decoded(logged_in, user):
    bomb = png((10_000, 10_000), mode="1")  # a few hundred KB that decode to 100 megapixels
    assert len(bomb) < 1024 * 1024
    response = upload(logged_in, bomb)
    assert response.status_code == 400
    assert "at most 16 megapixels" in response.get_data(as_text=True)
    db.session.refresh(user)
    assert user.avatar_filename is None


def test_nobody_fetches_another_users_avatar(app, logged_in, user):
    assert upload(logged_in, png((64, 64))).status_code == 302
    assert logged_in.get(f"/auth/avatar/{user.id}").status_code == 200
    stranger = app.test_client()
    login(stranger, make_user("stranger@example.com").email)
    assert stranger.get(f"/auth/avatar/{user.id}").status_code == 404


def test_the_clients_export_makes_formula_addresses_inert(logged_in, user):
    # A valid address that a spreadsheet would run as a formula.
    logged_in.post("/clients/new", data={"email": "=1+2-x@example.com", "full_name": "Formula"})
    export = logged_in.get("/clients/export.csv").get_data(as_text=True)
    assert "'=1+2-x@example.com" in export.splitlines()[1]

"""Logging out ends the session for good: the remember-me cookie, and copies of the cookies."""

from tests.support import login


def test_logout_ends_a_remember_me_login(client, user):
    login(client, user.email, remember="y")
    assert client.get_cookie("remember_token") is not None
    client.post("/auth/logout")
    assert client.get_cookie("remember_token") is None
    assert client.get("/auth/profile").status_code == 302


def test_a_copied_cookie_stops_working_at_logout(app, user):
    browser = app.test_client()
    login(browser, user.email, remember="y")
    stolen = {name: browser.get_cookie(name).value for name in ("session", "remember_token")}
    thief = app.test_client()
    for name, value in stolen.items():
        thief.set_cookie(name, value)
    assert thief.get("/auth/profile").status_code == 200
    browser.post("/auth/logout")
    assert thief.get("/auth/profile").status_code == 302
    # Nor does the remember-me cookie alone bring the session back.
    replay = app.test_client()
    replay.set_cookie("remember_token", stolen["remember_token"])
    assert replay.get("/auth/profile").status_code == 302

"""Who may do what with a mailing: owners only their own, managers look and disable, admins all."""

import pytest
from flask import url_for

from mailer.extensions import db
from mailer.models import Mailing
from tests.factories import add_clients, add_mailing, add_message, mailing_form
from tests.support import client_ids, login

# Every route of the blueprint that acts on one mailing, from the app's URL map, so that a new
# route cannot escape these checks.
MANAGER_ACTIONS = {"mailings.disable", "mailings.enable"}
MANAGER_VIEWS = {"mailings.detail"}


def mailing_routes(app):
    rules = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("mailings.") and "mailing_id" in rule.arguments
    ]
    assert {rule.endpoint for rule in rules} >= {
        "mailings.detail",
        "mailings.edit",
        "mailings.delete",
        "mailings.disable",
        "mailings.enable",
    }
    return rules


def requests_for(app, mailing_id):
    with app.test_request_context():
        for rule in mailing_routes(app):
            url = url_for(rule.endpoint, mailing_id=mailing_id)
            for method in sorted(rule.methods & {"GET", "POST"}):
                yield rule.endpoint, method, url


def test_another_owner_gets_404_on_every_mailing_route(app, as_other, mailing):
    before = (mailing.name, mailing.disabled_at, client_ids(mailing))
    for endpoint, method, url in requests_for(app, mailing.id):
        response = as_other.open(url, method=method, data=mailing_form(mailing.message, mailing.clients, name="Hacked"))
        assert response.status_code == 404, (endpoint, method)
    db.session.expire_all()
    assert db.session.get(Mailing, mailing.id) is not None
    assert (mailing.name, mailing.disabled_at, client_ids(mailing)) == before


def test_a_mailing_that_does_not_exist_is_404(app, as_owner):
    for endpoint, method, url in requests_for(app, 999999):
        assert as_owner.open(url, method=method).status_code == 404, (endpoint, method)


def test_manager_may_view_and_disable_but_change_nothing(app, as_manager, mailing):
    for endpoint, method, url in requests_for(app, mailing.id):
        response = as_manager.open(
            url, method=method, data=mailing_form(mailing.message, mailing.clients, name="Hacked")
        )
        if endpoint in MANAGER_ACTIONS:
            # GET of an action is its confirmation page; the POST does it.
            assert response.status_code == (200 if method == "GET" else 302), (endpoint, method)
        elif endpoint in MANAGER_VIEWS:
            assert response.status_code == 200, (endpoint, method)
        else:
            assert response.status_code == 403, (endpoint, method)
    db.session.expire_all()
    assert mailing.name == "Newsletter" and db.session.get(Mailing, mailing.id) is not None


def test_manager_sees_every_mailing_with_owner_column_and_filter(as_manager, owner, other_owner, mailing):
    add_mailing(other_owner, add_message(other_owner), add_clients(other_owner, 1, "b"), name="Bob's news")
    page = as_manager.get("/mailings/").get_data(as_text=True)
    assert "Newsletter" in page and "Bob&#39;s news" in page
    assert "Owner</th>" in page and owner.email in page and other_owner.email in page
    filtered = as_manager.get(f"/mailings/?owner={other_owner.id}").get_data(as_text=True)
    assert "Bob&#39;s news" in filtered and ">Newsletter<" not in filtered


def test_manager_page_hides_the_buttons_a_manager_cannot_use(as_manager, mailing):
    page = as_manager.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert f"/mailings/{mailing.id}/edit" not in page and f"/mailings/{mailing.id}/delete" not in page
    assert "Send now" not in page
    assert f"/mailings/{mailing.id}/disable" in page


def test_an_owner_only_sees_own_mailings_even_when_filtering_by_owner(as_other, owner, mailing):
    page = as_other.get(f"/mailings/?owner={owner.id}").get_data(as_text=True)
    assert "Newsletter" not in page and "Owner</th>" not in page


def test_manager_disables_then_enables_recording_who_and_when(app, as_manager, manager, mailing):
    response = as_manager.post(f"/mailings/{mailing.id}/disable", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "disabled: it will not be sent" in page
    db.session.refresh(mailing)
    assert mailing.disabled_at is not None and mailing.disabled_by_id == manager.id
    assert "Disabled on" in page and manager.display_name in page
    assert ">Disabled<" in as_manager.get("/mailings/").get_data(as_text=True)

    response = as_manager.post(f"/mailings/{mailing.id}/enable", follow_redirects=True)
    assert "enabled again" in response.get_data(as_text=True)
    db.session.refresh(mailing)
    assert mailing.disabled_at is None and mailing.disabled_by_id is None
    assert mailing.next_run_at == mailing.start_at


def test_disable_asks_first_and_enable_needs_post(as_manager, mailing):
    confirmation = as_manager.get(f"/mailings/{mailing.id}/disable")
    assert confirmation.status_code == 200 and 'name="reason"' in confirmation.text
    db.session.refresh(mailing)
    assert mailing.disabled_at is None
    assert as_manager.get(f"/mailings/{mailing.id}/enable").status_code == 405


def test_the_reason_of_a_disable_is_shown_to_the_owner_and_too_long_a_reason_changes_nothing(
    as_manager, as_owner, mailing
):
    too_long = as_manager.post(f"/mailings/{mailing.id}/disable", data={"reason": "x" * 501})
    assert too_long.status_code == 400 and "Field cannot be longer than 500 characters." in too_long.text
    db.session.refresh(mailing)
    assert mailing.disabled_at is None
    as_manager.post(f"/mailings/{mailing.id}/disable", data={"reason": "The list was bought"})
    assert "Reason: “The list was bought”" in as_owner.get(f"/mailings/{mailing.id}").text


def test_disable_needs_the_csrf_token(app, manager, mailing):
    app.config["WTF_CSRF_ENABLED"] = True
    browser = app.test_client()
    login(browser, manager.email)
    assert browser.post(f"/mailings/{mailing.id}/disable").status_code == 400
    db.session.refresh(mailing)
    assert mailing.disabled_at is None


def disabled_by_manager(app, manager, mailing):
    browser = app.test_client()
    login(browser, manager.email)
    browser.post(f"/mailings/{mailing.id}/disable")
    db.session.refresh(mailing)
    assert mailing.is_disabled
    return mailing.disabled_at


def test_owner_cannot_enable_a_mailing_a_manager_disabled(app, as_owner, manager, mailing):
    disabled_at = disabled_by_manager(app, manager, mailing)
    page = as_owner.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert "Disabled on" in page and "only a manager can enable it again" in page
    assert f"/mailings/{mailing.id}/enable" not in page and "Send now" not in page
    assert as_owner.post(f"/mailings/{mailing.id}/enable").status_code == 404
    assert as_owner.post(f"/mailings/{mailing.id}/disable").status_code == 404
    db.session.refresh(mailing)
    assert mailing.disabled_at == disabled_at


def test_editing_a_disabled_mailing_keeps_it_disabled(app, as_owner, manager, mailing, clients):
    disabled_at = disabled_by_manager(app, manager, mailing)
    form = as_owner.get(f"/mailings/{mailing.id}/edit").get_data(as_text=True)
    assert "only a manager can enable it again" in form
    response = as_owner.post(
        f"/mailings/{mailing.id}/edit",
        data=mailing_form(
            mailing.message,
            clients,
            name="Back on",
            start="2032-01-01T09:00",
            end="2032-02-01T09:00",
            disabled_at="",
            disabled_by_id="",
            enabled="y",
        ),
    )
    assert response.status_code == 302
    db.session.refresh(mailing)
    assert mailing.name == "Back on"
    assert mailing.disabled_at == disabled_at and mailing.disabled_by_id == manager.id


@pytest.mark.parametrize("action", ["edit", "delete"])
def test_admin_changes_any_mailing(as_admin, owner, mailing, clients, action):
    if action == "edit":
        # The admin works with the owner's messages and clients, not their own.
        form = as_admin.get(f"/mailings/{mailing.id}/edit").get_data(as_text=True)
        assert clients[0].email in form
        response = as_admin.post(
            f"/mailings/{mailing.id}/edit", data=mailing_form(mailing.message, clients[:1], name="Fixed by admin")
        )
        assert response.status_code == 302
        db.session.refresh(mailing)
        assert mailing.name == "Fixed by admin" and mailing.owner_id == owner.id
    else:
        response = as_admin.post(f"/mailings/{mailing.id}/delete")
        assert response.status_code == 302
        assert db.session.get(Mailing, mailing.id) is None


def test_admin_cannot_give_a_mailing_their_own_message(as_admin, admin, mailing, clients):
    admins_message = add_message(admin, "Admin's message")
    response = as_admin.post(f"/mailings/{mailing.id}/edit", data=mailing_form(admins_message, clients))
    assert response.status_code == 400 and "Choose one of your messages." in response.get_data(as_text=True)


def test_admin_may_disable_and_enable(as_admin, admin, mailing):
    assert as_admin.post(f"/mailings/{mailing.id}/disable").status_code == 302
    db.session.refresh(mailing)
    assert mailing.disabled_by_id == admin.id
    assert as_admin.post(f"/mailings/{mailing.id}/enable").status_code == 302
    db.session.refresh(mailing)
    assert not mailing.is_disabled

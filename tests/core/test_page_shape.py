"""What every page shares: the navigation, the skip link, the head, the status colours."""

import re
from datetime import timedelta

from mailer.database import lock_row
from mailer.extensions import db
from mailer.models import AttemptStatus, DeliveryStatus, Mailing, MailingStatus, Message, Role, RunStatus, utcnow
from mailer.templating import STATUS_BADGES, badge_class
from tests.factories import make_user
from tests.support import login


def nav_links(page: str) -> list[str]:
    nav = page.split('<ul class="navbar-nav me-auto">', 1)[1].split("</ul>", 1)[0]
    return re.findall(r"<a [^>]*>[^<]*</a>", nav)


def test_the_section_of_the_page_is_marked_current_in_the_navigation(logged_in):
    for path, section in [
        ("/clients/", "Clients"),
        ("/clients/new", "Clients"),
        ("/mailings/", "Mailings"),
        ("/reports/", "Reports"),
    ]:
        current = [
            link for link in nav_links(logged_in.get(path).get_data(as_text=True)) if 'aria-current="page"' in link
        ]
        assert len(current) == 1 and f">{section}</a>" in current[0] and "active" in current[0], path
    home = logged_in.get("/").get_data(as_text=True)
    assert not any('aria-current="page"' in link for link in nav_links(home))


def test_every_page_starts_with_a_link_that_skips_to_the_content(client, logged_in):
    page = logged_in.get("/clients/").get_data(as_text=True)
    body = page.split("<body", 1)[1]
    first_link = re.search(r"<a [^>]*>[^<]*</a>", body).group(0)
    assert 'href="#main"' in first_link and "visually-hidden-focusable" in first_link
    assert re.search(r'<main id="main"', page)


def test_a_page_stylesheet_goes_in_the_head(logged_in):
    page = logged_in.get("/mailings/new").get_data(as_text=True)
    head, body = page.split("</head>", 1)
    assert "client_picker.css" in head and "client_picker.css" not in body


def test_the_navigation_of_an_admin_on_a_page_refused_before_the_roles_are_loaded(client):
    make_user("admin@example.com", role=Role.ADMIN)
    login(client, "admin@example.com")
    # Refused by the first hook of every request, before Flask-Principal loads the roles.
    response = client.get("/clients/?q=%00")
    assert response.status_code == 400
    links = nav_links(response.get_data(as_text=True))
    assert any(">Admin</a>" in link for link in links) and any(">Users</a>" in link for link in links)


def test_every_status_has_one_badge_colour():
    for statuses in (MailingStatus, RunStatus, DeliveryStatus, AttemptStatus):
        for status in statuses:
            assert status.value in STATUS_BADGES, status
            assert badge_class(status) == badge_class(status.value) == STATUS_BADGES[status.value]


def test_a_run_shows_the_same_colour_on_its_page_and_in_its_report(app, logged_in, user):
    from mailer.services import runs

    message = Message(owner=user, subject="Hi", body_text="Hello")
    mailing = Mailing(
        owner=user,
        name="Empty",
        message=message,
        start_at=utcnow() + timedelta(days=1),
        end_at=utcnow() + timedelta(days=1),
    )
    db.session.add(mailing)
    db.session.commit()
    run = runs.start_manual_run(mailing, user)  # nobody to send to: done at once
    assert run.status == RunStatus.DONE
    done = STATUS_BADGES["done"]
    for path in (f"/runs/{run.id}", f"/reports/mailings/{mailing.id}/runs/{run.id}"):
        assert f'class="badge {done}"' in logged_in.get(path).get_data(as_text=True), path


def test_locking_a_row_changes_nothing_in_it(app, user):
    message = Message(owner=user, subject="Hi", body_text="Hello")
    mailing = Mailing(
        owner=user,
        name="Locked",
        message=message,
        start_at=utcnow() + timedelta(days=1),
        end_at=utcnow() + timedelta(days=1),
    )
    db.session.add(mailing)
    db.session.commit()
    updated_at = mailing.updated_at
    lock_row(db.session, mailing)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Mailing, mailing.id).updated_at == updated_at

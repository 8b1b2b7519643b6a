"""The inputs that answered 500 before, each with the clear answer it gets now (the fuzz test
covers every route; these name the cases)."""

import io

import pytest

from mailer.extensions import rq
from mailer.models import Role
from tests.factories import make_user
from tests.reports.test_rq_dashboard import demo_job
from tests.support import login


@pytest.fixture
def manager(client):
    make_user("manager@example.com", role=Role.MANAGER)
    login(client, "manager@example.com")
    return client


@pytest.fixture
def admin(client):
    make_user("admin@example.com", role=Role.ADMIN)
    login(client, "admin@example.com")
    return client


def test_an_id_past_any_column_is_not_found(logged_in):
    assert logged_in.get("/clients/99999999999999999999").status_code == 404


@pytest.mark.parametrize("query", ["page=99999999999999999999", "page=-5", "owner=99999999999999999999", "owner=-1"])
def test_page_and_owner_arguments_out_of_range_show_the_first_page(manager, query):
    for path in ("/clients/", "/messages/", "/mailings/", "/users/"):
        assert manager.get(f"{path}?{query}").status_code == 200, path


def test_a_blank_filter_value_is_a_form_error(manager):
    assert manager.get("/reports/?owner=%20").status_code == 400
    assert manager.get("/reports/statistics?owner=%20").status_code == 400


def test_a_nul_byte_is_refused_with_a_clear_message(client):
    response = client.post("/auth/login", data={"email": "a\x00@example.com", "password": "x"})
    assert response.status_code == 400
    assert "NUL character" in response.get_data(as_text=True)
    assert client.get("/auth/login?next=%00").status_code == 400


def test_an_address_of_a_megabyte_is_refused(client):
    assert client.get("/auth/login?next=" + "x" * 1_000_000).status_code == 414


def test_the_admin_panel_with_an_id_that_is_no_number(admin):
    response = admin.get("/admin/clients/edit/?id=abc")
    assert response.status_code == 302  # back to the list, "record does not exist"
    assert admin.get("/admin/clients/?page=99999999999999999999").status_code == 200


def test_the_rq_dashboard_with_unknown_jobs_and_pages(admin):
    assert admin.get("/rq/0/view/job/no-such-job").status_code == 404
    assert admin.get("/rq/0/data/job/no-such-job.json").status_code == 404
    assert admin.get("/rq/0/data/jobs/mailer/queued/0/asc/1.json").status_code == 404
    assert admin.post("/rq/queue/no-such-queue/compact").status_code == 404


def test_requeue_all_does_not_answer_get(app, admin):
    rq.queue.enqueue(demo_job)
    assert admin.get(f"/rq/requeue/{app.config['RQ_QUEUE']}").status_code == 405


def test_a_nul_byte_inside_an_imported_file_is_an_invalid_row(logged_in):
    csv_file = io.BytesIO(b"email,full_name\nada@example.com,Ada\x00Lovelace\nbob@exa\x00mple.com,Bob\n")
    response = logged_in.post(
        "/clients/import",
        data={"file": (csv_file, "clients.csv"), "on_existing": "skip"},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count("the row contains a NUL character") == 2
    assert "Ada" not in logged_in.get("/clients/").get_data(as_text=True)

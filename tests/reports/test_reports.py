"""Mailing and run reports: counts, filters, pagination, ownership."""

from datetime import timedelta

from mailer.models import DeliveryStatus, RunStatus, RunTrigger
from mailer.services import reports
from tests.factories import T0, make_user
from tests.reports.helpers import table_rows
from tests.support import login, page_link


def run_with_every_outcome(make, mailing):
    run = make.run(mailing, T0, duration=timedelta(minutes=2, seconds=5))
    for n in range(3):
        make.sent(run, f"sent{n}@example.com", T0 + timedelta(seconds=n))
    make.failed(run, "bounce1@example.com", T0 + timedelta(seconds=10))
    make.failed(run, "bounce2@example.com", T0 + timedelta(seconds=11), 554, "5.7.1 Rejected")
    make.delivery(run, "gone@example.com", DeliveryStatus.SKIPPED)
    make.delivery(run, "later@example.com", DeliveryStatus.PENDING)
    make.delivery(run, "inflight@example.com", DeliveryStatus.SENDING)
    return run


def test_mailing_report_counts_each_run(make, client, user):
    mailing = make.mailing(user)
    first = run_with_every_outcome(make, mailing)
    second = make.run(
        mailing,
        T0 + timedelta(days=1),
        trigger=RunTrigger.MANUAL,
        status=RunStatus.SENDING,
        duration=timedelta(seconds=30),
    )
    make.sent(second, "sent0@example.com", T0 + timedelta(days=1))
    login(client, user.email)

    response = client.get(f"/reports/mailings/{mailing.id}")
    assert response.status_code == 200
    rows = table_rows(response)
    # Newest run first: run, trigger, scheduled, started, duration, status, sent, failed, skipped, pending.
    assert rows[0][0] == f"#{second.id}" and rows[0][1] == "manual" and rows[0][5] == "sending"
    assert rows[0][6:] == ["1", "0", "0", "0"]
    assert rows[1][0] == f"#{first.id}" and rows[1][1] == "schedule" and rows[1][5] == "done"
    assert rows[1][2] == "2026-03-10 09:00"
    assert rows[1][4] == "2 min 05 s"
    assert rows[1][6:] == ["3", "2", "1", "2"]
    # The mailing's totals over every run.
    assert 'data-count="sent">4<' in response.get_data(as_text=True)
    assert 'data-count="recipients">9<' in response.get_data(as_text=True)


def test_reports_list_shows_totals_per_mailing(make, client, user):
    newsletter = make.mailing(user, "Newsletter")
    run_with_every_outcome(make, newsletter)
    make.mailing(user, "Not sent yet")
    login(client, user.email)

    rows = table_rows(client.get("/reports/"))
    by_name = {row[0]: row for row in rows}
    # Mailing, status, runs, last run, sent, failed, skipped, pending: no Owner column for an owner.
    assert by_name["Newsletter"][2:] == ["1", "2026-03-10 09:00", "3", "2", "1", "2"]
    assert by_name["Not sent yet"][2:] == ["0", "—", "0", "0", "0", "0"]


def test_empty_reports_say_what_to_do(client, user):
    login(client, user.email)
    assert "No mailing yet" in client.get("/reports/").get_data(as_text=True)


def test_run_report_lists_attempts_with_the_servers_answer(make, client, user):
    mailing = make.mailing(user)
    run = make.run(mailing)
    make.retried_and_refused(run)
    login(client, user.email)

    response = client.get(f"/reports/mailings/{mailing.id}/runs/{run.id}")
    assert response.status_code == 200
    assert table_rows(response) == [
        ["2026-03-10 09:02:00", "down@example.com", "failure", "Connection refused"],
        ["2026-03-10 09:01:00", "retry@example.com", "success", "250 2.0.0 Accepted"],
        ["2026-03-10 09:00:00", "retry@example.com", "failure", "451 4.3.0 Try again later"],
    ]

    recipients = client.get(f"/reports/mailings/{mailing.id}/runs/{run.id}?view=deliveries")
    assert table_rows(recipients) == [
        ["down@example.com", "failed", "1", "—", "Connection refused"],
        ["retry@example.com", "sent", "2", "2026-03-10 09:01:00", "250 2.0.0 Accepted"],
    ]
    failed_only = client.get(f"/reports/mailings/{mailing.id}/runs/{run.id}?view=deliveries&status=failed")
    assert [row[0] for row in table_rows(failed_only)] == ["down@example.com"]


def test_run_report_filters_by_result_and_by_days_of_the_users_time_zone(make, client):
    owner = make_user("ny@example.com", timezone="America/New_York")  # UTC-4 in March 2026
    mailing = make.mailing(owner)
    run = make.run(mailing)
    # 03:30 UTC is still 9 March in New York; 05:00 UTC is 10 March there.
    make.sent(run, "late-evening@example.com", T0.replace(hour=3, minute=30))
    make.sent(run, "early-morning@example.com", T0.replace(hour=5))
    make.failed(run, "refused@example.com", T0.replace(hour=6))
    make.sent(run, "next-day@example.com", T0 + timedelta(days=1))
    login(client, owner.email)
    url = f"/reports/mailings/{mailing.id}/runs/{run.id}"

    def recipients(query: str) -> list[str]:
        response = client.get(f"{url}?{query}")
        assert response.status_code == 200
        return [row[1] for row in table_rows(response)]

    assert recipients("date_from=2026-03-10&date_to=2026-03-10") == ["refused@example.com", "early-morning@example.com"]
    assert recipients("date_to=2026-03-09") == ["late-evening@example.com"]
    assert recipients("date_from=2026-03-11") == ["next-day@example.com"]
    assert recipients("status=failure") == ["refused@example.com"]
    assert recipients("status=success&date_from=2026-03-10&date_to=2026-03-10") == ["early-morning@example.com"]
    assert "No attempt matches these filters" in client.get(f"{url}?date_from=2027-01-01").get_data(as_text=True)
    # Times are shown in the user's zone too.
    assert table_rows(client.get(f"{url}?date_to=2026-03-09"))[0][0] == "2026-03-09 23:30:00"


def test_bad_filters_are_explained_on_the_form(make, client, user):
    mailing = make.mailing(user)
    run = make.run(mailing)
    make.sent(run, "a@example.com", T0)
    login(client, user.email)
    url = f"/reports/mailings/{mailing.id}/runs/{run.id}"

    not_a_date = client.get(f"{url}?date_from=yesterday")
    assert not_a_date.status_code == 400
    assert "Not a valid date value" in not_a_date.get_data(as_text=True)
    backwards = client.get(f"{url}?date_from=2026-03-10&date_to=2026-03-01")
    assert backwards.status_code == 400
    assert "The end date is before the start date." in backwards.get_data(as_text=True)
    unknown_status = client.get(f"{url}?status=bogus")
    assert unknown_status.status_code == 400
    # The log is still shown, unfiltered.
    assert len(table_rows(unknown_status)) == 1
    assert client.get(f"{url}/attempts.csv?date_from=nope").status_code == 400
    assert client.get(f"{url}?date_from=0001-01-01").status_code == 400
    assert client.get(f"{url}/attempts.csv?date_to=9999-12-31").status_code == 400


def test_attempts_are_paginated_and_pages_keep_the_filter(make, client, user):
    mailing = make.mailing(user)
    run = make.run(mailing)
    for n in range(35):
        make.failed(run, f"r{n:02d}@example.com", T0 + timedelta(seconds=n))
    make.sent(run, "ok@example.com", T0)
    login(client, user.email)
    url = f"/reports/mailings/{mailing.id}/runs/{run.id}"

    first = client.get(f"{url}?status=failure")
    rows = table_rows(first)
    assert len(rows) == 25
    assert rows[0][1] == "r34@example.com"
    page_two = page_link(first)
    assert "status=failure" in page_two
    second = table_rows(client.get(page_two))
    assert [row[1] for row in second] == [f"r{n:02d}@example.com" for n in range(9, -1, -1)]

    # Recipients, failed ones first, in the order of the run: r00@ ... r24@ on the first page.
    deliveries = client.get(page_link(client.get(f"{url}?view=deliveries")))
    assert [row[0] for row in table_rows(deliveries)] == [f"r{n:02d}@example.com" for n in range(25, 35)] + [
        "ok@example.com"
    ]


def test_counts_come_from_the_deliveries(make, user):
    mailing = make.mailing(user)
    run = run_with_every_outcome(make, mailing)
    counts = reports.delivery_counts_by_run([run.id])[run.id]
    assert (counts.sent, counts.failed, counts.skipped, counts.pending, counts.total) == (3, 2, 1, 2, 8)


def test_another_owners_mailing_and_runs_answer_404(make, client, user):
    mailing = make.mailing(user, "Private")
    run = make.run(mailing)
    make.sent(run, "a@example.com", T0)
    other = make_user("other@example.com")
    own_mailing = make.mailing(other, "Mine")
    login(client, other.email)

    for path in [
        f"/reports/mailings/{mailing.id}",
        f"/reports/mailings/{mailing.id}/runs/{run.id}",
        f"/reports/mailings/{mailing.id}/runs/{run.id}?view=deliveries",
        f"/reports/mailings/{mailing.id}/attempts.csv",
        f"/reports/mailings/{mailing.id}/runs/{run.id}/attempts.csv",
        # A run is only reached through its own mailing.
        f"/reports/mailings/{own_mailing.id}/runs/{run.id}",
        f"/reports/mailings/{own_mailing.id}/runs/{run.id}/attempts.csv",
        "/reports/mailings/999999",
    ]:
        assert client.get(path).status_code == 404, path

    listed = client.get(f"/reports/?owner={user.id}")
    assert [row[0] for row in table_rows(listed)] == ["Mine"]
    assert "Owner" not in listed.get_data(as_text=True)


def test_reports_need_login(client):
    response = client.get("/reports/")
    assert response.status_code == 302 and "/auth/login" in response.location


def test_a_manager_sees_everyones_mailings_and_filters_by_owner(make, client, user):
    alice = user
    bob = make_user("bob@example.com")
    make_user("manager@example.com", role="manager")
    alices = make.mailing(alice, "Alice's news")
    run = make.run(alices)
    make.sent(run, "x@example.com", T0)
    make.mailing(bob, "Bob's news")
    login(client, "manager@example.com")

    everyone = client.get("/reports/")
    assert everyone.status_code == 200
    assert sorted((row[0], row[1]) for row in table_rows(everyone)) == [
        ("Alice's news", alice.email),
        ("Bob's news", bob.email),
    ]
    assert ">Owner</th>" in everyone.get_data(as_text=True)

    only_bob = client.get(f"/reports/?owner={bob.id}")
    assert [row[0] for row in table_rows(only_bob)] == ["Bob's news"]
    assert client.get("/reports/?owner=424242").status_code == 400

    assert client.get(f"/reports/mailings/{alices.id}").status_code == 200
    assert client.get(f"/reports/mailings/{alices.id}/runs/{run.id}").status_code == 200
    export = client.get(f"/reports/mailings/{alices.id}/runs/{run.id}/attempts.csv")
    assert export.status_code == 200
    assert "x@example.com" in export.get_data(as_text=True)

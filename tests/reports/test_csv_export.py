"""CSV export of the attempt log: streamed, complete, inert in spreadsheets."""

from datetime import timedelta

from mailer.models import AttemptStatus, DeliveryStatus
from mailer.services import reports
from mailer.timezones import zone
from tests.factories import T0, make_user
from tests.reports.helpers import csv_rows
from tests.support import login


def test_run_csv_is_streamed_with_every_attempt(make, client):
    owner = make_user("paris@example.com", timezone="Europe/Paris")  # UTC+1 in March 2026
    mailing = make.mailing(owner, 'Spring "news"/../évènement; =1')
    run = make.run(mailing)
    make.retried_and_refused(run)
    login(client, owner.email)

    response = client.get(f"/reports/mailings/{mailing.id}/runs/{run.id}/attempts.csv")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition == f"attachment; filename=Spring_news_.._evenement_1-{mailing.id}-run-{run.id}-attempts.csv"
    assert csv_rows(response) == [
        ["time", "run", "recipient", "status", "smtp_code", "smtp_response", "error"],
        ["2026-03-10T10:00:00+01:00", str(run.id), "retry@example.com", "failure", "451", "4.3.0 Try again later", ""],
        ["2026-03-10T10:01:00+01:00", str(run.id), "retry@example.com", "success", "250", "2.0.0 Accepted", ""],
        ["2026-03-10T10:02:00+01:00", str(run.id), "down@example.com", "failure", "", "", "Connection refused"],
    ]


def test_csv_cells_cannot_run_as_spreadsheet_formulas(make, client, user):
    mailing = make.mailing(user)
    run = make.run(mailing)
    make.delivery(
        run,
        "-dash@example.com",
        DeliveryStatus.FAILED,
        [
            (T0, AttemptStatus.FAILURE, 550, '=HYPERLINK("http://evil.example","click")', "@SUM(1+1)"),
        ],
    )
    make.delivery(
        run,
        "+plus@example.com",
        DeliveryStatus.FAILED,
        [
            (T0, AttemptStatus.FAILURE, None, "\tcmd", "=cmd|' /C calc'!A0"),
        ],
    )
    make.sent(run, "safe@example.com", T0)
    login(client, user.email)

    rows = csv_rows(client.get(f"/reports/mailings/{mailing.id}/runs/{run.id}/attempts.csv"))
    assert rows[1][2:] == [
        "'-dash@example.com",
        "failure",
        "550",
        '\'=HYPERLINK("http://evil.example","click")',
        "'@SUM(1+1)",
    ]
    assert rows[2][2:] == ["'+plus@example.com", "failure", "", "'\tcmd", "'=cmd|' /C calc'!A0"]
    assert rows[3][2:] == ["safe@example.com", "success", "250", "2.0.0 Accepted", ""]


def test_mailing_csv_holds_every_run_and_follows_the_filters(make, client, user):
    mailing = make.mailing(user)
    first, second = make.run(mailing, T0), make.run(mailing, T0 + timedelta(days=7))
    make.sent(first, "a@example.com", T0)
    make.failed(first, "b@example.com", T0)
    make.sent(second, "a@example.com", T0 + timedelta(days=7))
    other = make.mailing(user, "Other")
    make.sent(make.run(other), "elsewhere@example.com", T0)
    login(client, user.email)

    everything = csv_rows(client.get(f"/reports/mailings/{mailing.id}/attempts.csv"))
    assert [(row[1], row[2], row[3]) for row in everything[1:]] == [
        (str(first.id), "a@example.com", "success"),
        (str(first.id), "b@example.com", "failure"),
        (str(second.id), "a@example.com", "success"),
    ]
    successes_in_week_two = csv_rows(
        client.get(f"/reports/mailings/{mailing.id}/attempts.csv?status=success&date_from=2026-03-15")
    )
    assert [row[1] for row in successes_in_week_two[1:]] == [str(second.id)]


def test_the_run_page_links_to_the_csv_of_what_it_shows(make, client, user):
    mailing = make.mailing(user)
    run = make.run(mailing)
    make.sent(run, "a@example.com", T0)
    login(client, user.email)
    page = client.get(f"/reports/mailings/{mailing.id}/runs/{run.id}?status=failure&date_from=2026-03-01")
    assert (
        f"/reports/mailings/{mailing.id}/runs/{run.id}/attempts.csv?status=failure&amp;date_from=2026-03-01"
        in page.get_data(as_text=True)
    )


def test_export_reads_the_log_in_batches_without_losing_or_repeating_rows(make, user):
    mailing = make.mailing(user)
    run = make.run(mailing)
    for n in range(7):
        make.sent(run, f"r{n}@example.com", T0 + timedelta(seconds=n))
    chunks = list(
        reports.attempts_csv(reports.AttemptFilter(), zone("UTC"), mailing_id=mailing.id, run_id=run.id, batch_size=3)
    )
    # The header, then one chunk per batch of 3: the whole log is never held at once.
    assert len(chunks) == 1 + 3
    lines = "".join(chunks).splitlines()[1:]
    assert [line.split(",")[2] for line in lines] == [f"r{n}@example.com" for n in range(7)]

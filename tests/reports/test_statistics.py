"""The statistics page: totals per mailing and per day, the chart, who sees what."""

import re
from datetime import UTC, date, datetime, timedelta

from mailer.models import AttemptStatus, DeliveryStatus, utcnow
from mailer.reports.chart import nice_step
from mailer.services import reports
from mailer.timezones import zone
from tests.factories import make_user
from tests.reports.helpers import table_rows
from tests.support import login


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def build_month(make, owner):
    """Attempts of two mailings on 10, 11 and 13 March 2026 (UTC), and one outside the period."""
    news = make.mailing(owner, "News")
    promo = make.mailing(owner, "Promo")
    run = make.run(news, at(10, 9))
    make.sent(run, "a@example.com", at(10, 9))
    make.sent(run, "b@example.com", at(10, 9, 1))
    make.failed(run, "c@example.com", at(10, 9, 2))
    # A retried delivery: two attempts, one message sent.
    make.delivery(
        run,
        "d@example.com",
        DeliveryStatus.SENT,
        [
            (at(10, 9, 3), AttemptStatus.FAILURE, 451, "4.3.0 Try later", None),
            (at(11, 9), AttemptStatus.SUCCESS, 250, "2.0.0 Accepted", None),
        ],
    )
    promo_run = make.run(promo, at(13, 23, 30))
    make.sent(promo_run, "a@example.com", at(13, 23, 30))
    make.failed(promo_run, "e@example.com", at(13, 23, 40))
    make.sent(make.run(promo, at(2, 12)), "early@example.com", at(2, 12))
    return news, promo


def test_totals_per_mailing_and_per_day(make, user):
    news, promo = build_month(make, user)
    period = reports.Period(date(2026, 3, 9), date(2026, 3, 14), zone("UTC"))

    stats = reports.statistics(period, user.id)

    assert (stats.totals.attempts, stats.totals.successes, stats.totals.failures, stats.totals.sent) == (7, 4, 3, 4)
    assert [(m.name, m.attempts, m.successes, m.failures, m.sent) for m in stats.per_mailing] == [
        ("News", 5, 3, 2, 3),
        ("Promo", 2, 1, 1, 1),
    ]
    assert [(d.day.day, d.successes, d.failures) for d in stats.per_day] == [
        (9, 0, 0),
        (10, 2, 2),
        (11, 1, 0),
        (12, 0, 0),
        (13, 1, 1),
        (14, 0, 0),
    ]


def test_days_are_the_users_days_across_a_daylight_saving_change(make, user):
    """Paris moves from UTC+1 to UTC+2 on 29 March 2026 at 01:00 UTC."""
    mailing = make.mailing(user)
    run = make.run(mailing, at(28, 12))
    make.sent(run, "a@example.com", at(28, 22, 59))  # 23:59 on the 28th in Paris
    make.sent(run, "b@example.com", at(28, 23, 30))  # 00:30 on the 29th
    make.sent(run, "c@example.com", at(29, 21, 30))  # 23:30 on the 29th (summer time now)
    make.sent(run, "d@example.com", at(29, 22, 30))  # 00:30 on the 30th
    period = reports.Period(date(2026, 3, 27), date(2026, 3, 31), zone("Europe/Paris"))

    per_day = {d.day.day: d.successes for d in reports.statistics(period, user.id).per_day}

    assert per_day == {27: 0, 28: 1, 29: 2, 30: 1, 31: 0}
    assert reports.offset_stretches(period.zone, period.since, period.until) == [
        (at(29, 1), timedelta(hours=1)),
        (period.until, timedelta(hours=2)),
    ]


def test_statistics_page_shows_figures_and_an_svg_chart(make, client):
    owner = make_user("tokyo@example.com", timezone="Asia/Tokyo")  # UTC+9
    build_month(make, owner)
    login(client, owner.email)

    response = client.get("/reports/statistics?date_from=2026-03-10&date_to=2026-03-14")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # 13 March 23:30 UTC is 14 March in Tokyo; every attempt of the 10th-11th stays in the period.
    assert re.search(r'data-total="attempts">7<', html)
    assert re.search(r'data-total="messages-sent">4<', html)
    assert [row for row in table_rows(response)] == [["News", "5", "3", "2", "3"], ["Promo", "2", "1", "1", "1"]]
    svg = html[html.index("<svg") : html.index("</svg>")]
    # Drawn on the server: no script inside, nothing loaded from another site.
    assert "<script" not in svg and not re.search(r'(src|href)="(https?:)?//', html)
    assert len(re.findall(r'class="bar-success"', svg)) == 3  # 10, 11 and 14 March
    assert len(re.findall(r'class="bar-failure"', svg)) == 2  # 10 and 14 March
    assert "Sat 14 Mar 2026: 1 failed" in svg
    for label in ("10 Mar", "11 Mar", "14 Mar"):
        assert f">{label}</text>" in svg
    assert "No attempts in this period" not in svg
    assert "Asia/Tokyo" in html


def test_an_empty_period_still_draws_axes(client, user):
    login(client, user.email)
    response = client.get("/reports/statistics?date_from=2020-01-01&date_to=2020-01-31")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "No attempts in this period" in html
    assert ">01 Jan</text>" in html and 'class="bar-' not in html
    assert "Nothing was sent in this period" in html


def test_the_default_period_is_the_last_30_days(make, client, user):
    mailing = make.mailing(user)
    run = make.run(mailing, utcnow() - timedelta(days=40))
    make.sent(run, "recent@example.com", utcnow() - timedelta(days=1))
    make.sent(run, "old@example.com", utcnow() - timedelta(days=40))
    login(client, user.email)

    response = client.get("/reports/statistics")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-total="attempts">1<' in html
    today = utcnow().date()
    assert f'value="{today - timedelta(days=29)}"' in html and f'value="{today}"' in html


def test_bad_periods_are_explained(client, user):
    login(client, user.email)
    too_long = client.get("/reports/statistics?date_from=2024-01-01&date_to=2026-01-01")
    assert too_long.status_code == 400
    assert "Choose a period of at most 366 days." in too_long.get_data(as_text=True)
    backwards = client.get("/reports/statistics?date_from=2026-03-10&date_to=2026-03-01")
    assert backwards.status_code == 400
    assert "The end date is before the start date." in backwards.get_data(as_text=True)
    assert client.get("/reports/statistics?date_from=soon").status_code == 400
    for query in ("date_from=0001-01-01", "date_to=0001-01-05", "date_from=9999-12-01&date_to=9999-12-31"):
        response = client.get(f"/reports/statistics?{query}")
        assert response.status_code == 400, query
        assert "Choose a date between 1970 and 2999." in response.get_data(as_text=True)


def test_owners_see_their_own_and_managers_everyones_with_a_filter(make, app, user):
    build_month(make, user)
    bob = make_user("bob@example.com")
    bobs = make.mailing(bob, "Bob's")
    make.sent(make.run(bobs, at(12, 8)), "x@example.com", at(12, 8))
    make_user("manager@example.com", role="manager")
    query = "/reports/statistics?date_from=2026-03-09&date_to=2026-03-14"

    as_bob = app.test_client()
    login(as_bob, bob.email)
    # An owner's ?owner= is ignored: there is no such filter for them.
    page = as_bob.get(f"{query}&owner={user.id}")
    assert page.status_code == 200
    assert table_rows(page) == [["Bob's", "1", "1", "0", "1"]]

    as_manager = app.test_client()
    login(as_manager, "manager@example.com")
    everyone = as_manager.get(query)
    assert 'data-total="attempts">8<' in everyone.get_data(as_text=True)
    assert sorted(row[:2] for row in table_rows(everyone)) == [
        ["Bob's", bob.email],
        ["News", user.email],
        ["Promo", user.email],
    ]
    only_bob = as_manager.get(f"{query}&owner={bob.id}")
    assert 'data-total="attempts">1<' in only_bob.get_data(as_text=True)
    assert f"Mailings of {bob.email}" in only_bob.get_data(as_text=True)
    assert [row[0] for row in table_rows(only_bob)] == ["Bob's"]
    assert as_manager.get(f"{query}&owner=abc").status_code == 400


def test_chart_steps_are_round_numbers():
    assert [nice_step(n) for n in (0, 3, 4, 9, 18, 40, 95, 1234)] == [1, 1, 1, 5, 5, 10, 50, 500]

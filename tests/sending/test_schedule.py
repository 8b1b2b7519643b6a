"""Repeat schedules with a fixed clock: occurrences in the owner's time zone, month ends,
leap years, daylight saving, the end time, and the status a mailing moves through."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mailer.extensions import db
from mailer.models import Mailing, MailingRun, MailingStatus, Message, Repeat, RunStatus, RunTrigger, User
from mailer.services.schedule import next_run_time, occurrences, refresh_status, reset_schedule
from tests.factories import make_user

UTC = UTC


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def mailing_for(start_at, end_at, repeat=Repeat.NONE, tz="UTC") -> Mailing:
    """A mailing that is not saved: the schedule needs only its dates and its owner's zone."""
    return Mailing(name="m", start_at=start_at, end_at=end_at, repeat=repeat, owner=User(timezone=tz))


def test_one_off_runs_once_at_its_start():
    mailing = mailing_for(utc(2026, 3, 1, 9), utc(2026, 3, 2))
    assert next_run_time(mailing, None) == utc(2026, 3, 1, 9)
    assert next_run_time(mailing, utc(2026, 2, 1)) == utc(2026, 3, 1, 9)
    assert next_run_time(mailing, utc(2026, 3, 1, 9)) is None


def test_daily_steps_one_day_and_stops_at_the_end():
    mailing = mailing_for(utc(2026, 3, 1, 9), utc(2026, 3, 4, 9), Repeat.DAILY)
    assert occurrences(mailing) == [utc(2026, 3, d, 9) for d in (1, 2, 3, 4)]
    assert next_run_time(mailing, utc(2026, 3, 1, 9)) == utc(2026, 3, 2, 9)
    assert next_run_time(mailing, utc(2026, 3, 2, 8, 59)) == utc(2026, 3, 2, 9)
    # The end time itself is still inside the mailing; a second later nothing is left.
    assert next_run_time(mailing, utc(2026, 3, 3, 9)) == utc(2026, 3, 4, 9)
    assert next_run_time(mailing, utc(2026, 3, 4, 9)) is None


def test_end_between_two_occurrences():
    mailing = mailing_for(utc(2026, 3, 1, 9), utc(2026, 3, 3, 8, 59), Repeat.DAILY)
    assert occurrences(mailing) == [utc(2026, 3, 1, 9), utc(2026, 3, 2, 9)]
    assert next_run_time(mailing, utc(2026, 3, 2, 9)) is None


def test_weekly_keeps_the_weekday():
    mailing = mailing_for(utc(2026, 1, 5, 18, 30), utc(2026, 12, 31), Repeat.WEEKLY)
    assert occurrences(mailing, limit=3) == [
        utc(2026, 1, 5, 18, 30),
        utc(2026, 1, 12, 18, 30),
        utc(2026, 1, 19, 18, 30),
    ]
    after = utc(2026, 6, 10, 12)  # a Wednesday
    following = next_run_time(mailing, after)
    assert following == utc(2026, 6, 15, 18, 30) and following.weekday() == 0


def test_monthly_from_the_31st_counts_from_the_anchor():
    mailing = mailing_for(utc(2026, 1, 31, 10), utc(2026, 12, 31, 23), Repeat.MONTHLY)
    first = occurrences(mailing, limit=5)
    assert first == [
        utc(2026, 1, 31, 10),
        utc(2026, 2, 28, 10),
        utc(2026, 3, 31, 10),
        utc(2026, 4, 30, 10),
        utc(2026, 5, 31, 10),
    ]
    # From the end of February the schedule goes back to the 31st, not to the 28th.
    assert next_run_time(mailing, utc(2026, 2, 28, 10)) == utc(2026, 3, 31, 10)


def test_monthly_in_a_leap_year_and_yearly_29_february():
    mailing = mailing_for(utc(2028, 1, 31, 10), utc(2028, 4, 1), Repeat.MONTHLY)
    assert occurrences(mailing) == [utc(2028, 1, 31, 10), utc(2028, 2, 29, 10), utc(2028, 3, 31, 10)]
    daily = mailing_for(utc(2028, 2, 28, 7), utc(2028, 3, 1, 7), Repeat.DAILY)
    assert occurrences(daily) == [utc(2028, 2, 28, 7), utc(2028, 2, 29, 7), utc(2028, 3, 1, 7)]


def test_daily_keeps_local_time_across_daylight_saving():
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2026, 3, 27, 9, 0, tzinfo=paris)  # 08:00 UTC, winter time
    mailing = mailing_for(start, datetime(2026, 3, 31, 0, 0, tzinfo=paris), Repeat.DAILY, tz="Europe/Paris")
    runs = occurrences(mailing)
    assert [run.astimezone(paris).hour for run in runs] == [9, 9, 9, 9]
    # Summer time begins on 29 March: the same 09:00 is an hour earlier in UTC.
    assert [run.hour for run in runs] == [8, 8, 7, 7]
    assert next_run_time(mailing, utc(2026, 3, 28, 8)) == utc(2026, 3, 29, 7)


def test_occurrences_follow_the_owner_zone_not_utc():
    new_york = ZoneInfo("America/New_York")
    # 31 January 22:00 in New York is 1 February 03:00 UTC; a month later is 28 February local.
    start = datetime(2026, 1, 31, 22, 0, tzinfo=new_york)
    mailing = mailing_for(start, utc(2026, 4, 30), Repeat.MONTHLY, tz="America/New_York")
    assert [run.astimezone(new_york).date().isoformat() for run in occurrences(mailing)] == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
    ]


def test_next_run_far_after_the_start_is_exact():
    mailing = mailing_for(utc(2020, 1, 31, 10), utc(2030, 1, 1), Repeat.MONTHLY)
    assert next_run_time(mailing, utc(2026, 2, 15)) == utc(2026, 2, 28, 10)
    daily = mailing_for(utc(2020, 1, 1, 23, 30), utc(2030, 1, 1), Repeat.DAILY)
    assert next_run_time(daily, utc(2026, 6, 1, 23, 30)) == utc(2026, 6, 2, 23, 30)


@pytest.fixture
def saved_mailing(app):
    owner = make_user("scheduler-owner@example.com", timezone="UTC")
    message = Message(owner=owner, subject="Hi", body_text="Hello")

    def make(start_at, end_at, repeat=Repeat.NONE) -> Mailing:
        mailing = Mailing(
            owner=owner, name="Weekly news", message=message, start_at=start_at, end_at=end_at, repeat=repeat
        )
        db.session.add(mailing)
        db.session.flush()
        return mailing

    return make


def add_run(mailing, scheduled_for, status=RunStatus.DONE, trigger=RunTrigger.SCHEDULE) -> MailingRun:
    run = MailingRun(mailing=mailing, trigger=trigger, scheduled_for=scheduled_for, status=status)
    db.session.add(run)
    db.session.flush()
    return run


def test_reset_schedule_before_any_run_uses_the_start_even_in_the_past(saved_mailing):
    now = utc(2026, 5, 10, 12)
    mailing = saved_mailing(utc(2026, 5, 1, 9), utc(2026, 6, 1), Repeat.DAILY)
    reset_schedule(mailing, now)
    assert mailing.next_run_at == utc(2026, 5, 1, 9)  # due at once: one run catches up
    assert mailing.status == MailingStatus.CREATED


def test_reset_schedule_after_runs_moves_to_the_next_future_occurrence(saved_mailing):
    now = utc(2026, 5, 10, 12)
    mailing = saved_mailing(utc(2026, 5, 1, 9), utc(2026, 6, 1), Repeat.DAILY)
    add_run(mailing, utc(2026, 5, 3, 9))  # the scheduler was down for a week: nothing replayed
    reset_schedule(mailing, now)
    assert mailing.next_run_at == utc(2026, 5, 11, 9)
    assert mailing.status == MailingStatus.RUNNING


def test_status_moves_created_running_finished(saved_mailing):
    now = utc(2026, 5, 1, 9, 0, 5)
    mailing = saved_mailing(utc(2026, 5, 1, 9), utc(2026, 5, 2))
    reset_schedule(mailing, now)
    assert mailing.status == MailingStatus.CREATED
    run = add_run(mailing, mailing.next_run_at, status=RunStatus.SENDING)
    mailing.next_run_at = next_run_time(mailing, run.scheduled_for)
    assert mailing.next_run_at is None
    assert refresh_status(mailing, now) is True
    assert mailing.status == MailingStatus.RUNNING  # its one run is still sending
    run.status = RunStatus.DONE
    db.session.flush()
    assert refresh_status(mailing, now) is True
    assert mailing.status == MailingStatus.FINISHED
    assert refresh_status(mailing, now) is False


def test_extending_the_end_of_a_finished_mailing_resumes_it(saved_mailing):
    mailing = saved_mailing(utc(2026, 5, 1, 9), utc(2026, 5, 2, 9), Repeat.DAILY)
    add_run(mailing, utc(2026, 5, 1, 9))
    add_run(mailing, utc(2026, 5, 2, 9))
    now = utc(2026, 5, 2, 10)
    reset_schedule(mailing, now)
    assert mailing.next_run_at is None and mailing.status == MailingStatus.FINISHED
    mailing.end_at = utc(2026, 5, 31)
    reset_schedule(mailing, now)
    assert mailing.next_run_at == utc(2026, 5, 3, 9)
    assert mailing.status == MailingStatus.RUNNING


def test_a_start_after_the_end_has_nothing_to_send(saved_mailing):
    mailing = saved_mailing(utc(2026, 5, 3), utc(2026, 5, 2))
    reset_schedule(mailing, utc(2026, 5, 1))
    assert mailing.next_run_at is None
    assert mailing.status == MailingStatus.FINISHED


def test_manual_runs_do_not_move_the_schedule(saved_mailing):
    mailing = saved_mailing(utc(2026, 5, 1, 9), utc(2026, 5, 31), Repeat.WEEKLY)
    add_run(mailing, utc(2026, 5, 4, 15), trigger=RunTrigger.MANUAL)
    reset_schedule(mailing, utc(2026, 5, 4, 16))
    assert mailing.next_run_at == utc(2026, 5, 1, 9)
    assert mailing.status == MailingStatus.RUNNING

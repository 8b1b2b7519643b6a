"""Filter forms of the reports. They are GET forms: they change nothing, so they carry no CSRF
token, and their values stay in the address to be bookmarked, paginated and exported."""

from datetime import date, timedelta

from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField
from wtforms.validators import Optional, ValidationError

from mailer.i18n import lazy_text as _l
from mailer.models import AttemptStatus, DeliveryStatus
from mailer.services.reports import MAX_PERIOD_DAYS
from mailer.words import word


class FilterForm(FlaskForm):
    class Meta:
        csrf = False


EVERYONE = SelectChoice("", _l("Everyone"))


def owner_choices(owners) -> list[SelectChoice]:
    return [EVERYONE] + [SelectChoice(str(owner.id), owner.email) for owner in owners]


# Filter choices always include "" (everyone, any): an empty or missing value is a valid choice
# and anything else must be one of the choices. (With Optional(), WTForms would also accept
# a blank such as " " and leave it in the data, which no filter can use.)
class OwnerFilterForm(FilterForm):
    owner = SelectField(_l("Owner"), choices=[EVERYONE], default="")

    @property
    def owner_id(self) -> int | None:
        return int(self.owner.data) if self.owner.data and not self.owner.errors else None


EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)


def within_calendar(form, field):
    """Dates far outside any mailing's life would overflow the time-zone arithmetic."""
    if field.data and not EARLIEST <= field.data <= LATEST:
        raise ValidationError(_("Choose a date between %(first)s and %(last)s.", first=EARLIEST.year, last=LATEST.year))


class DateRangeMixin:
    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date is before the start date."))


class AttemptFilterForm(DateRangeMixin, FilterForm):
    status = SelectField(
        _l("Result"),
        choices=[SelectChoice("", _l("Any result"))]
        + [SelectChoice(status.value, word(status)) for status in AttemptStatus],
        default="",
    )
    date_from = DateField(_l("From"), validators=[Optional(), within_calendar])
    date_to = DateField(_l("To"), validators=[Optional(), within_calendar])


class DeliveryFilterForm(FilterForm):
    status = SelectField(
        _l("Status"),
        choices=[SelectChoice("", _l("Any status"))]
        + [SelectChoice(status.value, word(status)) for status in DeliveryStatus],
        default="",
    )


class StatisticsForm(DateRangeMixin, OwnerFilterForm):
    date_from = DateField(_l("From"), validators=[Optional(), within_calendar])
    date_to = DateField(_l("To"), validators=[Optional(), within_calendar])

    def fill_empty_dates(self, today: date, days: int) -> None:
        """Empty dates mean the `days` days up to today (or up to the chosen end), and the form
        shows them so."""
        if not self._entered(self.date_to):
            self.date_to.data = max(today, self.date_from.data or today)
        if not self._entered(self.date_from):
            end = self.date_to.data or today
            self.date_from.data = end - timedelta(days=days - 1) if end >= EARLIEST else end

    @staticmethod
    def _entered(field) -> bool:
        return bool(field.raw_data and field.raw_data[0].strip())

    def validate_date_from(self, field):
        if field.data and self.date_to.data and (self.date_to.data - field.data).days >= MAX_PERIOD_DAYS:
            raise ValidationError(_("Choose a period of at most %(days)s days.", days=MAX_PERIOD_DAYS))

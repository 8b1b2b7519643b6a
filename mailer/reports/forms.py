"""Filter forms of the reports. They are GET forms: they change nothing, so they carry no CSRF
token, and their values stay in the address to be bookmarked, paginated and exported."""
from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField
from wtforms.validators import Optional, ValidationError

from mailer.models import AttemptStatus, DeliveryStatus
from mailer.services.reports import MAX_PERIOD_DAYS


class FilterForm(FlaskForm):
    class Meta:
        csrf = False


EVERYONE = SelectChoice("", "Everyone")


def owner_choices(owners) -> list[SelectChoice]:
    return [EVERYONE] + [SelectChoice(str(owner.id), owner.email) for owner in owners]


class OwnerFilterForm(FilterForm):
    owner = SelectField("Owner", choices=[EVERYONE], validators=[Optional()])

    @property
    def owner_id(self) -> int | None:
        return int(self.owner.data) if self.owner.data and not self.owner.errors else None


class DateRangeMixin:
    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date is before the start date.")


class AttemptFilterForm(DateRangeMixin, FilterForm):
    status = SelectField(
        "Result",
        choices=[SelectChoice("", "Any result")]
        + [SelectChoice(status.value, status.value.capitalize()) for status in AttemptStatus],
        validators=[Optional()],
    )
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])


class DeliveryFilterForm(FilterForm):
    status = SelectField(
        "Status",
        choices=[SelectChoice("", "Any status")]
        + [SelectChoice(status.value, status.value.capitalize()) for status in DeliveryStatus],
        validators=[Optional()],
    )


class StatisticsForm(DateRangeMixin, OwnerFilterForm):
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])

    def validate_date_from(self, field):
        if field.data and self.date_to.data and (self.date_to.data - field.data).days >= MAX_PERIOD_DAYS:
            raise ValidationError(f"Choose a period of at most {MAX_PERIOD_DAYS} days.")

from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import NumberRange, Optional


class RunActionForm(FlaskForm):
    """The buttons of the run pages (Cancel, Pause, Resume, Retry failed, Send to the rest)
    carry only the CSRF token."""


class SendNowForm(FlaskForm):
    """The Send now confirmation: the latest run the person saw (0 for none), so that a mailing
    sent meanwhile is not sent again without a second look."""

    last_run = IntegerField(validators=[Optional(), NumberRange(min=0)])

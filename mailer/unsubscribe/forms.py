from flask_wtf import FlaskForm
from wtforms import SubmitField

from mailer.i18n import lazy_text as _l


class UnsubscribeForm(FlaskForm):
    submit = SubmitField(_l("Unsubscribe"))

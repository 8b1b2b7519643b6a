from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SubmitField


class UnsubscribeForm(FlaskForm):
    submit = SubmitField(_l("Unsubscribe"))

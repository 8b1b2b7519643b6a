from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField
from wtforms.validators import Length

from mailer.i18n import lazy_text as _l
from mailer.services.users import REASON_MAX_LENGTH


class BlockForm(FlaskForm):
    """Block or unblock an account; a block may say why (its owner is told)."""

    reason = TextAreaField(
        _l("Reason (optional, shown to the user)"),
        validators=[Length(max=REASON_MAX_LENGTH)],
        render_kw={"rows": 3, "maxlength": REASON_MAX_LENGTH},
    )
    next = HiddenField()

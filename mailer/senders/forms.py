from flask_wtf import FlaskForm
from wtforms import EmailField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from mailer.forms import strip
from mailer.i18n import lazy_text as _l
from mailer.services import senders as sender_service


def checked_address(form, field) -> None:
    if field.data:
        try:
            sender_service.normalize_address(field.data, field.name)
        except sender_service.IdentityError as error:
            raise ValidationError(str(error)) from None


class IdentityForm(FlaskForm):
    name = StringField(
        _l("Name"),
        filters=[strip],
        validators=[Optional(), Length(max=sender_service.NAME_MAX_LENGTH)],
        description=_l("Shown to recipients before the address, e.g. “Alice from Example Shop”."),
    )
    email = EmailField(
        _l("E-mail address"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter an e-mail address.")),
            Length(max=sender_service.EMAIL_MAX_LENGTH),
            checked_address,
        ],
        description=_l("We send a confirmation link to it; it can be used once you have followed that link."),
    )
    reply_to = EmailField(
        _l("Reply-To (optional)"),
        filters=[strip],
        validators=[Optional(), Length(max=sender_service.EMAIL_MAX_LENGTH), checked_address],
        description=_l("Where replies go, if not to the address above."),
    )
    submit = SubmitField(_l("Save sender address"))


class EditIdentityForm(IdentityForm):
    """The address itself is what was confirmed: only the name and the Reply-To change."""

    email = None


class ActionForm(FlaskForm):
    """A POST-only action (resend the link, delete): only the CSRF token."""

    submit = SubmitField(_l("Confirm"))

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import EmailField, RadioField, SelectChoice, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from mailer.forms import strip
from mailer.i18n import lazy_text as _l
from mailer.services import clients as client_service
from mailer.services.client_import import ON_EXISTING_CHOICES, ON_EXISTING_SKIP


class ClientForm(FlaskForm):
    email = EmailField(
        _l("E-mail"),
        filters=[strip],
        validators=[DataRequired(_l("Enter an e-mail address.")), Length(max=client_service.EMAIL_MAX_LENGTH)],
    )
    full_name = StringField(
        _l("Full name"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the client's full name.")), Length(max=client_service.FULL_NAME_MAX_LENGTH)],
    )
    comment = TextAreaField(
        _l("Comment"),
        filters=[strip],
        validators=[Optional(), Length(max=client_service.COMMENT_MAX_LENGTH)],
        render_kw={"rows": 3},
    )
    submit = SubmitField(_l("Save client"))

    def validate_email(self, field) -> None:
        try:
            client_service.clean_email(field.data)
        except client_service.ClientError as error:
            raise ValidationError(str(error)) from None


class DeleteForm(FlaskForm):
    submit = SubmitField(_l("Delete"))


class ImportForm(FlaskForm):
    file = FileField(
        _l("CSV file"),
        validators=[FileRequired(_l("Choose a CSV file."))],
        render_kw={"accept": ".csv,text/csv,text/plain"},
    )
    on_existing = RadioField(
        _l("When a client with the same e-mail already exists"),
        choices=[SelectChoice(value, label) for value, label in ON_EXISTING_CHOICES],
        default=ON_EXISTING_SKIP,
    )
    submit = SubmitField(_l("Import"))

from flask_wtf import FlaskForm
from wtforms import EmailField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from mailer.forms import strip
from mailer.i18n import lazy_text as _l
from mailer.services import messages as message_service
from mailer.services.message_templates import check_template

PLACEHOLDER_HELP = _l("You may use {{ name }} and {{ email }}; they are replaced for each client.")


def check(problem: str | None) -> None:
    if problem:
        raise ValidationError(problem)


class MessageForm(FlaskForm):
    subject = StringField(
        _l("Subject"),
        filters=[strip],
        validators=[DataRequired(_l("Enter a subject."))],
        description=PLACEHOLDER_HELP,
        render_kw={"maxlength": message_service.SUBJECT_MAX_LENGTH},
    )
    body_text = TextAreaField(
        _l("Plain-text body"),
        validators=[DataRequired(_l("Enter the text of the message."))],
        description=_l(
            "Every client receives this text; mail programs that show HTML show "
            "the HTML body below instead, if there is one."
        ),
        render_kw={"rows": 12},
    )
    body_html = TextAreaField(
        _l("HTML body (optional)"),
        validators=[Optional()],
        description=_l("Scripts, event handlers and javascript: links are removed when you save."),
        render_kw={"rows": 12, "spellcheck": "false"},
    )
    submit = SubmitField(_l("Save message"))

    # Inline validators run after the field's own, so a missing field is reported once and the
    # template check never parses an oversized body.
    def validate_subject(self, field) -> None:
        if not field.errors:
            check(message_service.subject_problem(field.data) or check_template(field.data))

    def validate_body_text(self, field) -> None:
        if not field.errors:
            check(message_service.body_problem(field.data, "text") or check_template(field.data))

    def validate_body_html(self, field) -> None:
        if field.data and not field.errors:
            check(message_service.body_problem(field.data, "HTML") or check_template(field.data))


class DeleteForm(FlaskForm):
    submit = SubmitField(_l("Delete"))


class TestSendForm(FlaskForm):
    """A test of the message to any address; empty means the sender's own."""

    to = EmailField(
        _l("Send a test to"),
        validators=[Optional(), Length(max=254)],
        render_kw={"placeholder": _l("your own address"), "maxlength": 254},
    )
    submit = SubmitField(_l("Send a test"))

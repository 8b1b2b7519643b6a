"""What every form of the site shares."""

from flask_wtf import FlaskForm

from mailer.services.errors import FieldError


def strip(value):
    """Form filter: no leading or trailing white space in a text field."""
    return value.strip() if isinstance(value, str) else value


def add_field_error(form: FlaskForm, error: FieldError, default: str | None = None) -> None:
    """Show a service's refusal on the field it names, else on `default`, else above the form."""
    field = form._fields.get(error.field or default or "")
    if field is None:
        form.form_errors.append(str(error))
    else:
        field.errors = [*field.errors, str(error)]  # a tuple until the field was validated

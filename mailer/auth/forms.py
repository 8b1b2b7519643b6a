from functools import cache
from pathlib import Path

from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, EmailField, PasswordField, SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, Regexp, ValidationError

from mailer.i18n import LANGUAGES, current_language
from mailer.i18n import lazy_text as _l
from mailer.timezones import country_choices, timezone_choices

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def not_a_common_password(form, field):
    """Refuse the passwords tried first by anyone guessing, and the account's own address."""
    password = (field.data or "").strip().lower()
    email = getattr(form, "email", None)
    own_address = ((email.data if email is not None else None) or getattr(current_user, "email", "") or "").lower()
    if password in common_passwords() or (own_address and password in {own_address, own_address.split("@")[0]}):
        raise ValidationError(
            _l("This password is too easy to guess: choose a less common one, such as a few unrelated words.")
        )


PASSWORD_RULES = [DataRequired(), Length(min=8, max=128, message=_l("Use 8 to 128 characters.")), not_a_common_password]
EMAIL_RULES = [
    DataRequired(),
    Email(message=_l("Enter a valid e-mail address."), check_deliverability=False),
    Length(max=254),
]
PHONE_RULES = [
    Optional(),
    Length(max=32),
    Regexp(r"^\+?[0-9 ().-]{5,32}$", message=_l("Use digits, spaces and + ( ) - only.")),
]


class CountryAndZoneMixin:
    def fill_choices(self) -> None:
        self.country.choices = country_choices(current_language())
        self.timezone.choices = timezone_choices()


class RegistrationForm(FlaskForm, CountryAndZoneMixin):
    email = EmailField(_l("E-mail"), validators=EMAIL_RULES)
    password = PasswordField(_l("Password"), validators=PASSWORD_RULES)
    password_again = PasswordField(
        _l("Password again"), validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))]
    )
    full_name = StringField(_l("Full name"), validators=[Optional(), Length(max=120)])
    phone = StringField(_l("Phone"), validators=PHONE_RULES)
    country = SelectField(_l("Country"), validators=[Optional()], validate_choice=True)
    timezone = SelectField(_l("Time zone"), default="UTC")
    submit = SubmitField(_l("Create account"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fill_choices()


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=128)])
    remember = BooleanField(_l("Remember me"))
    submit = SubmitField(_l("Log in"))


class EmailOnlyForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=EMAIL_RULES)
    submit = SubmitField(_l("Send the link"))


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=PASSWORD_RULES)
    password_again = PasswordField(
        _l("New password again"), validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))]
    )
    submit = SubmitField(_l("Set the new password"))


class ProfileForm(FlaskForm, CountryAndZoneMixin):
    full_name = StringField(_l("Full name"), validators=[Optional(), Length(max=120)])
    phone = StringField(_l("Phone"), validators=PHONE_RULES)
    country = SelectField(_l("Country"), validators=[Optional()])
    timezone = SelectField(_l("Time zone"))
    locale = SelectField(
        _l("Language"),
        validators=[Optional()],
        default="",
        choices=[
            SelectChoice("", _l("The browser's language")),
            *(SelectChoice(code, name) for code, name in LANGUAGES.items()),
        ],
    )
    submit = SubmitField(_l("Save profile"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fill_choices()


class AvatarForm(FlaskForm):
    avatar = FileField(
        _l("Avatar (PNG, JPEG, GIF or WebP, at most 1 MB)"), validators=[FileRequired(_l("Choose an image."))]
    )
    submit = SubmitField(_l("Upload"))


class RemoveAvatarForm(FlaskForm):
    submit = SubmitField(_l("Remove avatar"))


class ChangeEmailForm(FlaskForm):
    email = EmailField(_l("New e-mail"), validators=EMAIL_RULES)
    password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=128)])
    submit = SubmitField(_l("Change e-mail"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=128)])
    password = PasswordField(_l("New password"), validators=PASSWORD_RULES)
    password_again = PasswordField(
        _l("New password again"), validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))]
    )
    submit = SubmitField(_l("Change password"))


class LogoutForm(FlaskForm):
    submit = SubmitField(_l("Log out"))

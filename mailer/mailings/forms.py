from functools import cached_property

from flask_babel import format_number, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, StopValidation, ValidationError

from mailer.forms import strip
from mailer.i18n import lazy_ptext
from mailer.i18n import lazy_text as _l
from mailer.models import Repeat, utcnow
from mailer.services import mailings as mailing_service
from mailer.services import senders as sender_service
from mailer.services import servers as server_service
from mailer.timezones import user_zone
from mailer.urls import positive_int

# datetime-local inputs send "2030-01-31T09:00"; the first format is also the one rendered.
DATETIME_LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
# Far enough for any campaign, and far from the limits of Python's dates, which time-zone
# conversions and repeat steps would otherwise overflow.
FIRST_YEAR, LAST_YEAR = 1970, 2999
SEND_NOW, SCHEDULE = "now", "schedule"
# A pasted list of addresses: some 50,000 of them.
ADDRESSES_MAX_LENGTH = 2_000_000


def viewer_zone():
    """Times are typed in the zone of the person at the keyboard, as the pages show them."""
    return user_zone(current_user)


def optional_id(value):
    """A select's value as an id; the blank choice ("use the default") is None."""
    if value in (None, "", "None"):
        return None
    try:
        return positive_int(value)
    except (TypeError, ValueError):
        return -1  # no such row (nor one a database column could hold): the service refuses it


def check_year(form, field) -> None:
    if field.data is not None and not FIRST_YEAR <= field.data.year <= LAST_YEAR:
        raise ValidationError(_("Enter a date between %(first)s and %(last)s.", first=FIRST_YEAR, last=LAST_YEAR))


def start_needed(form, field) -> None:
    """The start may be left empty only when the mailing is sent as it is saved."""
    if not form.sends_now and not (field.raw_data and field.raw_data[0].strip()):
        raise StopValidation(_l("Enter when the mailing starts."))


class MailingForm(FlaskForm):
    """A mailing of one owner: the message and clients offered are that owner's.

    Whether the chosen message and clients really are the owner's, and the rules on the
    times, are checked by the mailings service, which reports each problem on its field.
    """

    name = StringField(
        lazy_ptext("mailing", "Name"),
        filters=[strip],
        validators=[DataRequired(_l("Give the mailing a name.")), Length(max=mailing_service.NAME_MAX_LENGTH)],
    )
    # positive_int: a number no id can have is a form error, not a database error.
    message = SelectField(
        _l("Message"), coerce=positive_int, validate_choice=False, validators=[InputRequired(_l("Choose a message."))]
    )
    recipients = RadioField(_l("Clients"), default=mailing_service.CHOSEN_CLIENTS)
    clients = SelectMultipleField(_l("Clients"), coerce=positive_int, validate_choice=False)
    client_addresses = TextAreaField(
        _l("E-mail addresses"),
        description=_l("One per line, or separated by commas; “Name <address>” lines work too."),
        validators=[Length(max=ADDRESSES_MAX_LENGTH)],
        render_kw={"rows": 4},
    )
    # Only on a new mailing: "now" starts it as it is saved, and the page then follows its run.
    when = RadioField(
        _l("When"),
        choices=[
            SelectChoice(SEND_NOW, _l("Send as soon as it is saved")),
            SelectChoice(SCHEDULE, _l("Start at a date and time")),
        ],
        default=SCHEDULE,
    )
    start_at = DateTimeLocalField(
        _l("Start"),
        format=DATETIME_LOCAL_FORMATS,
        tz=viewer_zone,
        invalid_value_message=_l("Enter a date and time."),
        validators=[start_needed, Optional(), check_year],
    )
    end_at = DateTimeLocalField(
        _l("End"),
        format=DATETIME_LOCAL_FORMATS,
        tz=viewer_zone,
        invalid_value_message=_l("Enter a date and time."),
        description=_l("Optional for a mailing sent once; a repeating one stops here."),
        validators=[Optional(), check_year],
    )
    repeat = SelectField(
        _l("Repeat"),
        choices=[SelectChoice(value, label) for value, label in mailing_service.REPEAT_CHOICES],
        default=Repeat.NONE.value,
    )
    sender_identity = SelectField(_l("From"), coerce=optional_id, validate_choice=False)
    smtp_server = SelectField(_l("SMTP server"), coerce=optional_id, validate_choice=False)
    submit = SubmitField(_l("Save mailing"))

    def __init__(self, owner_id: int, *args, new: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner_id = owner_id
        if not new:  # an existing mailing keeps its start; Send now is on its page
            del self.when
        self.client_count = mailing_service.owner_client_count(owner_id)
        # Always valid when posted (a long list may be ticked before the owner's clients grow);
        # offered on the page only up to CLIENT_LIST_LIMIT clients.
        self.recipients.choices = [
            SelectChoice(mailing_service.CHOSEN_CLIENTS, _l("The clients ticked in the list")),
            SelectChoice(
                mailing_service.ALL_CLIENTS, _("All clients (%(count)s)", count=format_number(self.client_count))
            ),
            SelectChoice(mailing_service.CLIENT_ADDRESSES, _l("The clients with the addresses pasted below")),
        ]
        self.message.choices = [
            SelectChoice(id_, subject) for id_, subject in mailing_service.message_choices(owner_id)
        ]
        # Only confirmed addresses are offered; the service refuses any other id that is sent.
        identities = sender_service.confirmed_identities(owner_id)
        self.sender_identity.choices = [
            SelectChoice(
                "",
                _l("Default: your first confirmed sender address")
                if identities
                else _l("Default: the site's sender address"),
            )
        ]
        self.sender_identity.choices += [SelectChoice(identity.id, str(identity)) for identity in identities]
        self.smtp_server.choices = [SelectChoice("", _("Default: %(name)s", name=server_service.default_server_name()))]
        self.smtp_server.choices += [SelectChoice(id_, name) for id_, name in server_service.server_choices()]

    def offer_keeping(self, mailing_client_count: int) -> None:
        """On an edit: keep the mailing's clients as they are, the choice that needs no list."""
        self.recipients.choices.append(
            SelectChoice(
                mailing_service.KEEP_CLIENTS,
                ngettext(
                    "Keep the %(count)s client chosen",
                    "Keep the %(count)s clients chosen",
                    mailing_client_count,
                    count=format_number(mailing_client_count),
                ),
            )
        )

    @property
    def offers_list(self) -> bool:
        return self.client_count <= mailing_service.CLIENT_LIST_LIMIT

    @cached_property
    def client_options(self) -> list[mailing_service.ClientOption]:
        # Loaded only when the form is shown with its list: a submission never needs it.
        return mailing_service.client_options(self.owner_id)

    @property
    def sends_now(self) -> bool:
        return "when" in self._fields and self.when.data == SEND_NOW

    def to_data(self) -> mailing_service.MailingData:
        return mailing_service.MailingData(
            name=self.name.data,
            message_id=self.message.data,
            client_ids=list(self.clients.data or []),
            start_at=utcnow() if self.sends_now else self.start_at.data,
            end_at=self.end_at.data,
            repeat=Repeat(self.repeat.data),
            sender_identity_id=self.sender_identity.data,
            smtp_server_id=self.smtp_server.data,
            recipients=self.recipients.data,
            client_addresses=self.client_addresses.data or "",
        )

    @property
    def selected_client_ids(self) -> set[int]:
        return set(self.clients.data or [])

    @property
    def has_choices(self) -> bool:
        return bool(self.message.choices) and self.client_count > 0


class DisableForm(FlaskForm):
    """A manager disabling a mailing; the reason is shown to its owner."""

    reason = TextAreaField(
        _l("Reason (optional, shown to the owner)"),
        validators=[Length(max=mailing_service.REASON_MAX_LENGTH)],
        render_kw={"rows": 3, "maxlength": mailing_service.REASON_MAX_LENGTH},
    )


class ConfirmForm(FlaskForm):
    """A POST-only action (delete, disable, enable): only the CSRF token."""

    submit = SubmitField(_l("Confirm"))

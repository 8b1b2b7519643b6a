"""The admin panel (Flask-Admin) at /admin: a view of every model, for admins only.

Everyone else gets 404 on every page of the panel, as for any page they may not use. The
`Admin` object and its views belong to one app, so `register_admin` builds them anew for each
app the factory creates.
"""

from datetime import UTC, datetime
from enum import Enum

from flask import Flask, abort, flash, g, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_admin.contrib.sqla.form import AdminModelConverter
from flask_admin.form import DateTimeField, SecureForm, Select2Field
from flask_admin.menu import MenuLink
from flask_admin.model import typefmt
from flask_admin.model.form import converts
from flask_admin.model.template import (
    DeleteRowAction,
    EditRowAction,
    EndpointLinkRowAction,
    TemplateLinkRowAction,
    ViewRowAction,
)
from flask_admin.theme import Bootstrap4Theme
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import func, inspect, select, text
from wtforms import BooleanField, PasswordField, TextAreaField, validators
from wtforms.validators import ValidationError

from mailer.database import is_postgresql
from mailer.extensions import db
from mailer.forms import add_field_error
from mailer.i18n import lazy_text as _l
from mailer.listing import SEARCH_MAX_LENGTH
from mailer.models import (
    AttemptStatus,
    Client,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingAttempt,
    MailingRun,
    MailingStatus,
    Message,
    Repeat,
    Role,
    RunStatus,
    RunTrigger,
    SenderIdentity,
    SmtpServer,
    User,
    utcnow,
)
from mailer.permissions import is_admin
from mailer.services import accounts, schedule, secrets
from mailer.services import clients as client_service
from mailer.services import mailings as mailing_service
from mailer.services import messages as message_service
from mailer.services import senders as sender_service
from mailer.services import servers as server_service
from mailer.services.clients import ClientError
from mailer.services.dkim_signing import public_key_record
from mailer.services.messages import MessageError
from mailer.services.senders import IdentityError
from mailer.services.servers import ServerError
from mailer.services.stats import clear_stats_cache
from mailer.urls import MAX_ID, positive_int
from mailer.words import word


class AdminForm(SecureForm):
    """Flask-Admin's SecureForm carrying Flask-WTF's CSRF token.

    CSRFProtect checks every POST of the site, the panel's included; with this Meta the form
    renders the one token that both CSRFProtect and the form itself accept.
    """

    class Meta(FlaskForm.Meta):
        pass


class MailingAdminForm(AdminForm):
    """A mailing with more clients than the site's form lists (CLIENT_LIST_LIMIT) is edited here
    without its client list: all of them would be loaded and written into the page (200,000
    clients: tens of megabytes). Its clients are chosen on the site's form instead."""

    def process(self, formdata=None, obj=None, data=None, extra_filters=None, **kwargs):
        if obj is not None and obj.client_count > mailing_service.CLIENT_LIST_LIMIT and "clients" in self:
            del self["clients"]
        super().process(formdata, obj, data=data, extra_filters=extra_filters, **kwargs)


class UTCDateTimeField(DateTimeField):
    """Dates in the panel are entered and shown in UTC, the zone they are stored in."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and self.data.tzinfo is None:
            self.data = self.data.replace(tzinfo=UTC)


class MailerModelConverter(AdminModelConverter):
    @converts("UTCDateTime")
    def convert_utc_datetime(self, field_args, **extra):
        field_args.setdefault("description", "UTC, as YYYY-MM-DD HH:MM:SS")
        return UTCDateTimeField(**field_args)

    @converts("sqlalchemy.sql.sqltypes.Enum")
    def convert_enum(self, column, field_args, **extra):
        # The columns store the members' values ("running"); the form shows their words.
        enum_class = column.type.enum_class
        choices = [(value, word(enum_class(value)) if enum_class else value) for value in column.type.enums]
        accepted = [value for value, _ in choices]
        if column.nullable:
            field_args["allow_blank"] = True
            accepted.append(None)
        self._nullable_common(column, field_args)
        field_args["choices"] = choices
        field_args["validators"].append(validators.AnyOf(accepted))
        field_args["coerce"] = lambda value: value.value if hasattr(value, "value") else str(value)
        return Select2Field(**field_args)


class EnumEqual(FilterEqual):
    """Equality on an enum column, by the stored value ("running") that the panel shows."""

    def __init__(self, column, name: str, enum_class):
        super().__init__(column, name, options=[(member.value, word(member)) for member in enum_class])
        self.enum_class = enum_class

    def clean(self, value):
        # An unknown value raises ValueError, and Flask-Admin then ignores the filter.
        return self.enum_class(value)


class IdAjaxModelLoader(QueryAjaxModelLoader):
    """The owner, message and client pickers: a value that is no id names no row (a form error),
    rather than reaching the database."""

    def get_one(self, pk):
        try:
            positive_int(pk)
        except (TypeError, ValueError):
            return None
        return super().get_one(pk)


class AdminOnly:
    def is_accessible(self) -> bool:
        return is_admin()

    def inaccessible_callback(self, name, **kwargs):
        abort(404)


class PanelIndexView(AdminOnly, AdminIndexView):
    @expose("/")
    def index(self):
        estimates = table_estimates()
        counts = [
            (category, name, admin_endpoint(url), *row_count(model, estimates))
            for _view, model, url, name, category in MODEL_VIEWS
        ]
        return self.render("admin/index.html", counts=counts)


def table_estimates() -> dict[str, float]:
    """The planner's estimate of the rows of every table (PostgreSQL; nothing elsewhere)."""
    if not is_postgresql(db.session):
        return {}
    return dict(
        db.session.execute(
            text(
                "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' AND relnamespace = "
                "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
            )
        ).all()
    )


def row_count(model, estimates: dict[str, float]) -> tuple[int, bool]:
    """The rows of a table, and whether that is an estimate: for a large one the planner's
    estimate, which costs nothing, where counting millions of attempts would take seconds."""
    estimate = estimates.get(model.__tablename__)
    if estimate is not None and estimate > ESTIMATE_ABOVE:
        return int(estimate), True
    return db.session.scalar(select(func.count()).select_from(model)), False


# Tables larger than this are not counted on the panel's front page.
ESTIMATE_ABOVE = 100_000


def format_datetime(view, value: datetime, name: str) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_enum(view, value: Enum, name: str) -> str:
    # The member's word in the reader's language ("Active" for a running mailing), as on the site.
    return str(word(value))


FORMATTERS = {datetime: format_datetime, Enum: format_enum}

# The panel's column and field names (Flask-Admin would make "Created At" of created_at, in
# English only).
COLUMN_LABELS = {
    "attempted_at": _l("Attempted"),
    "attempts": _l("Attempts"),
    "auth_version": _l("Session version"),
    "avatar_filename": _l("Avatar file"),
    "blocked_at": _l("Blocked"),
    "blocked_reason": _l("Reason for blocking"),
    "body_html": _l("HTML body"),
    "body_text": _l("Plain text"),
    "claim_token": _l("Claim token"),
    "claimed_at": _l("Claimed"),
    "client": _l("Client"),
    "clients": _l("Clients"),
    "comment": _l("Comment"),
    "confirmed_at": _l("Confirmed"),
    "country": _l("Country"),
    "created_at": _l("Created"),
    "created_by": _l("Created by"),
    "delivery": _l("Delivery"),
    "description": _l("Description"),
    "disabled_at": _l("Disabled"),
    "disabled_by": _l("Disabled by"),
    "disabled_reason": _l("Reason for disabling"),
    "email": _l("E-mail"),
    "email_confirmed_at": _l("Confirmed"),
    "end_at": _l("End"),
    "error": _l("Error"),
    "failed_count": _l("Failed"),
    "finished_at": _l("Finished"),
    "first_attempt_at": _l("First try"),
    "full_name": _l("Full name"),
    "host": _l("Host"),
    "id": "ID",
    "is_active": _l("Active"),
    "last_code": _l("Last code"),
    "last_login_at": _l("Last login"),
    "last_response": _l("Last answer"),
    "locale": _l("Language"),
    "mailing": _l("Mailing"),
    "message": _l("Message"),
    "message_id_header": "Message-ID",
    "name": _l("Name"),
    "next_run_at": _l("Next run"),
    "owner": _l("Owner"),
    "password_hash": _l("Password hash"),
    "phone": _l("Phone"),
    "port": _l("Port"),
    "repeat": _l("Repeat"),
    "reply_to": "Reply-To",
    "retry_at": _l("Next try"),
    "retry_of": _l("Retry of"),
    "roles": _l("Roles"),
    "run": _l("Run"),
    "run_id": _l("Run"),
    "scheduled_for": _l("Scheduled for"),
    "security": _l("Security"),
    "sender_identity": _l("Sender address"),
    "sent_at": _l("Sent"),
    "sent_count": _l("Sent"),
    "skipped_count": _l("Skipped"),
    "smtp_code": _l("SMTP code"),
    "smtp_response": _l("SMTP answer"),
    "smtp_server": _l("SMTP server"),
    "start_at": _l("Start"),
    "started_at": _l("Started"),
    "status": _l("Status"),
    "subject": _l("Subject"),
    "timezone": _l("Time zone"),
    "total_count": _l("Total"),
    "trigger": _l("Trigger"),
    "unknown_count": _l("Unknown outcome"),
    "unsubscribed_at": _l("Unsubscribed"),
    "updated_at": _l("Changed"),
    "user": _l("User"),
    "users": _l("Users"),
    "runs": _l("Runs"),
    "deliveries": _l("Deliveries"),
    "has_password": _l("Password"),
    "is_default": _l("Default"),
    "dkim": "DKIM",
    "dkim_record": _l("DKIM DNS record"),
    "max_connections": _l("Max connections"),
    "username": _l("User name"),
    "rate_limit": _l("Rate limit"),
    "dkim_selector": _l("DKIM selector"),
    "dkim_domain": _l("DKIM domain"),
}


class SecureModelView(AdminOnly, ModelView):
    form_base_class = AdminForm
    model_form_converter = MailerModelConverter
    column_type_formatters = {**typefmt.BASE_FORMATTERS, **FORMATTERS}
    column_type_formatters_detail = {**typefmt.DETAIL_FORMATTERS, **FORMATTERS}
    can_view_details = True
    can_export = False
    # As on the site's lists: a page of Flask-Admin's table costs about 2 ms of rendering a row.
    page_size = 25
    column_display_pk = True
    # Previous / next only: no count of the whole table (millions of attempts) on every page.
    simple_list_pager = True
    column_labels = COLUMN_LABELS
    list_template = "admin/mailer_list.html"

    def get_list_row_actions(self):
        """Flask-Admin's view, edit and delete buttons, drawn by admin/mailer_row_actions.html."""
        ours = {ViewRowAction: "view_row", EditRowAction: "edit_row", DeleteRowAction: "delete_row"}
        return [
            TemplateLinkRowAction(f"mailer_row_actions.{ours[type(action)]}", action.title)
            if type(action) in ours
            else action
            for action in super().get_list_row_actions()
        ]

    def _get_list_extra_args(self):
        view_args = super()._get_list_extra_args()
        # A page past any table, or a search longer than any value, would only make the database
        # fail or crawl: the first page, and the search cut to the list pages' length.
        if not 0 <= view_args.page <= MAX_ID // self.page_size:
            view_args.page = 0
        if view_args.sort is not None and not 0 <= view_args.sort <= MAX_ID:
            view_args.sort = None
        if view_args.search:
            view_args.search = view_args.search[:SEARCH_MAX_LENGTH]
        return view_args

    def _create_ajax_loader(self, name, options):
        related_model = getattr(self.model, name).property.mapper.class_
        return IdAjaxModelLoader(name, self.session, related_model, **options)

    def get_one(self, id):
        # Every table has an integer id: anything else (?id=abc, a number past the column's
        # range) names no row, rather than an error from the database.
        try:
            positive_int(id)
        except (TypeError, ValueError):
            return None
        return super().get_one(id)


class ReadOnlyModelView(SecureModelView):
    """The sending engine's records: changing them by hand would make the counts and the log lie."""

    can_create = False
    can_edit = False
    can_delete = False


class OwnedStatsView(SecureModelView):
    """Clients and mailings feed the home page figures: clear them after a change."""

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        # The previous owner's figures change too when the object moves to another owner.
        previous = [owner.id for owner in inspect(model).attrs.owner.history.deleted if owner is not None]
        g.stats_owners_to_clear = previous

    def after_model_change(self, form, model, is_created):
        super().after_model_change(form, model, is_created)
        for owner_id in {model.owner_id, *g.pop("stats_owners_to_clear", [])}:
            clear_stats_cache(owner_id)

    def after_model_delete(self, model):
        super().after_model_delete(model)
        clear_stats_cache(model.owner_id)


USER_AJAX = {"fields": ("email", "full_name"), "page_size": 20}


class UserView(SecureModelView):
    # Accounts come from registration or `flask users create`, which set a password.
    can_create = False
    column_list = (
        "id",
        "email",
        "full_name",
        "roles",
        "is_active",
        "blocked_at",
        "email_confirmed_at",
        "created_at",
        "last_login_at",
    )
    column_searchable_list = ("email", "full_name")
    column_filters = ("is_active",)
    column_default_sort = ("id", False)
    column_exclude_list = ("password_hash",)
    column_details_exclude_list = ("password_hash",)
    form_columns = ("email", "full_name", "phone", "country", "timezone", "email_confirmed_at", "is_active", "roles")

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        model.email = accounts.lowercase_email(model.email)
        if model.id == current_user.id and not model.is_admin:
            raise ValidationError(_("You cannot remove your own admin role: ask another admin."))
        if inspect(model).attrs.is_active.history.has_changes():
            if model.id == current_user.id and not model.is_active:
                raise ValidationError(_("You cannot block yourself."))
            # Through the accounts service, so a block also ends the user's sessions.
            accounts.set_blocked(model, not model.is_active)

    def on_model_delete(self, model):
        if model.id == current_user.id:
            raise ValidationError(_("You cannot delete your own account here."))
        super().on_model_delete(model)

    def after_model_delete(self, model):
        super().after_model_delete(model)
        clear_stats_cache(model.id)


class RoleView(SecureModelView):
    # The roles are fixed: the code grants rights by their names.
    can_create = False
    can_delete = False
    column_list = ("id", "name", "description")
    form_columns = ("description",)


class ClientView(OwnedStatsView):
    column_list = ("id", "owner", "email", "full_name", "unsubscribed_at", "created_at")
    column_searchable_list = ("email", "full_name")
    column_default_sort = ("id", True)
    form_columns = ("owner", "email", "full_name", "comment", "unsubscribed_at")
    form_ajax_refs = {"owner": USER_AJAX}

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        if model.owner is None:
            raise ValidationError(_("Choose the client's owner."))
        model.owner_id = model.owner.id
        # The same rules as the site's own form: a valid address, unique for its owner.
        try:
            client_service.update_client(model, model.email, model.full_name, model.comment)
        except ClientError as error:
            raise ValidationError(str(error)) from None

    def on_model_delete(self, model):
        super().on_model_delete(model)
        client_service.leave_mailings(model)


class MessageView(SecureModelView):
    column_list = ("id", "owner", "subject", "created_at", "updated_at")
    column_searchable_list = ("subject",)
    column_default_sort = ("id", True)
    column_exclude_list = ("body_text", "body_html")
    form_columns = ("owner", "subject", "body_text", "body_html")
    form_ajax_refs = {"owner": USER_AJAX}

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        # The same rules as the site's own form: one-line subject, valid templates, sanitised HTML.
        try:
            message_service.update_message(model, model.subject, model.body_text, model.body_html)
        except MessageError as error:
            raise ValidationError(str(error)) from None


class MailingView(OwnedStatsView):
    column_list = (
        "id",
        "owner",
        "name",
        "message",
        "status",
        "repeat",
        "start_at",
        "end_at",
        "next_run_at",
        "disabled_at",
    )
    column_searchable_list = ("name",)
    column_filters = (
        EnumEqual(Mailing.status, _l("Status"), MailingStatus),
        EnumEqual(Mailing.repeat, _l("Repeat"), Repeat),
    )
    column_default_sort = ("id", True)
    # Disabling records who did it: that goes through the mailing's page.
    # The status and the next run follow from the schedule and the runs: they are recomputed on
    # every save, as the mailing form does, never typed in.
    form_columns = (
        "owner",
        "name",
        "message",
        "clients",
        "start_at",
        "end_at",
        "repeat",
        "sender_identity",
        "smtp_server",
    )
    form_ajax_refs = {
        "owner": USER_AJAX,
        "message": {"fields": ("subject",), "page_size": 20},
        "clients": {"fields": ("email", "full_name"), "page_size": 20},
    }
    form_base_class = MailingAdminForm
    edit_template = "admin/mailing_edit.html"

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        owner_id = model.owner.id if model.owner else None
        if model.message is not None and model.message.owner_id != owner_id:
            raise ValidationError(_("The message must belong to the mailing's owner."))
        if "clients" in form:
            others_clients = any(client.owner_id != owner_id for client in model.clients)
        else:  # a long list, not on the form: asked of the database rather than loaded
            others_clients = mailing_service.has_others_clients(model.id, owner_id)
        if others_clients:
            raise ValidationError(_("Every client must belong to the mailing's owner."))
        if model.start_at and model.end_at and model.start_at > model.end_at:
            raise ValidationError(_("The start must not be after the end."))
        if model.sender_identity is not None:
            try:
                sender_service.check_for_mailing(owner_id, model.sender_identity.id)
            except IdentityError as error:
                raise ValidationError(str(error)) from None
        schedule.reset_schedule(model, utcnow())


class MailingRunView(ReadOnlyModelView):
    column_list = (
        "id",
        "mailing",
        "trigger",
        "status",
        "scheduled_for",
        "total_count",
        "sent_count",
        "failed_count",
        "skipped_count",
        "started_at",
        "finished_at",
    )
    column_filters = (
        EnumEqual(MailingRun.status, _l("Status"), RunStatus),
        EnumEqual(MailingRun.trigger, _l("Trigger"), RunTrigger),
    )
    column_default_sort = ("id", True)


class DeliveryView(ReadOnlyModelView):
    column_list = ("id", "run_id", "email", "status", "attempts", "sent_at", "last_code", "last_response")
    column_searchable_list = ("email",)
    column_filters = (EnumEqual(Delivery.status, _l("Status"), DeliveryStatus),)
    column_default_sort = ("id", True)


class MailingAttemptView(ReadOnlyModelView):
    column_list = ("id", "attempted_at", "mailing", "run_id", "email", "status", "smtp_code", "smtp_response", "error")
    column_searchable_list = ("email",)
    column_filters = (EnumEqual(MailingAttempt.status, _l("Status"), AttemptStatus),)
    # Newest first by the primary key: no sort over the whole log.
    column_default_sort = ("id", True)


def format_password(view, context, model, name) -> str:
    # Secrets are never shown back, only whether one is stored.
    return "stored" if model.has_password else "—"


def format_dkim(view, context, model, name) -> str:
    if not model.has_dkim:
        return "—"
    return f"{model.dkim_selector}._domainkey.{model.dkim_domain}"


def format_dkim_record(view, context, model, name):
    if not model.has_dkim:
        return "—"
    try:
        record = public_key_record(secrets.decrypt(model.dkim_private_key_encrypted))
    except secrets.SecretError as error:
        return str(error)
    return Markup('TXT record at <code>{}</code>:<br><code class="text-break">{}</code>').format(
        f"{model.dkim_selector}._domainkey.{model.dkim_domain}", record
    )


class SmtpServerView(SecureModelView):
    """SMTP servers. Passwords and DKIM keys are write-only: the form takes a new one, or a tick
    to remove the stored one, and nothing shows them back."""

    column_list = (
        "id",
        "name",
        "host",
        "port",
        "security",
        "username",
        "has_password",
        "rate_limit",
        "max_connections",
        "is_default",
        "dkim",
    )
    column_details_list = (*column_list, "dkim_record", "created_at")
    column_formatters = {"has_password": format_password, "dkim": format_dkim}
    column_formatters_detail = {"has_password": format_password, "dkim": format_dkim, "dkim_record": format_dkim_record}
    column_searchable_list = ("name", "host")
    column_default_sort = ("name", False)
    column_extra_row_actions = [
        EndpointLinkRowAction("fa fa-plug", ".check_connection", title=_l("Test connection"), id_arg="server_id"),
    ]
    form_columns = (
        "name",
        "host",
        "port",
        "security",
        "username",
        "new_password",
        "clear_password",
        "rate_limit",
        "max_connections",
        "is_default",
        "dkim_selector",
        "dkim_domain",
        "new_dkim_private_key",
        "clear_dkim_private_key",
    )
    form_extra_fields = {
        "new_password": PasswordField(
            _l("Password"), description=_l("Stored encrypted and never shown. Leave empty to keep the stored one.")
        ),
        "clear_password": BooleanField(_l("Remove the stored password")),
        "new_dkim_private_key": TextAreaField(
            _l("DKIM private key"),
            render_kw={"rows": 4},
            description=_l(
                "PEM (-----BEGIN PRIVATE KEY-----). Stored encrypted "
                "and never shown. Leave empty to keep the stored one."
            ),
        ),
        "clear_dkim_private_key": BooleanField(_l("Remove the stored DKIM key")),
    }
    form_args = {
        "port": {"description": _l("587 for STARTTLS, 465 for TLS, 25 for a relay without encryption.")},
        "rate_limit": {
            "description": _l(
                "Messages the server allows, e.g. “50 per second” or several joined by "
                "“;”: “50 per second; 10000 per hour”. Empty: no limit."
            )
        },
        "max_connections": {"description": _l("Connections open at once, over every worker. Empty: no limit.")},
        "is_default": {
            "label": _l("Default server"),
            "description": _l("Used by mailings that name no server. Marking this one unmarks the other."),
        },
        "dkim_selector": {
            "description": _l("With the domain and the key below, messages through this server are signed with DKIM.")
        },
    }

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        for name in ("new_password", "clear_password", "new_dkim_private_key", "clear_dkim_private_key"):
            model.__dict__.pop(name, None)  # form.populate_obj copies the extra fields onto the row too
        try:
            server_service.prepare_server(
                model,
                new_password=form.new_password.data or None,
                clear_password=form.clear_password.data,
                new_dkim_key=form.new_dkim_private_key.data or None,
                clear_dkim_key=form.clear_dkim_private_key.data,
            )
        except ServerError as error:
            if error.field in form._fields:
                add_field_error(form, error)
            raise ValidationError(str(error)) from None

    list_template = "admin/smtp_servers_list.html"

    def render(self, template, **kwargs):
        if template == self.list_template:
            try:
                kwargs["builtin"] = server_service.builtin_server()
            except ServerError as error:
                flash(str(error), "error")
                kwargs["builtin"] = None
        return super().render(template, **kwargs)

    @expose("/check/<int:server_id>", methods=["GET", "POST"])
    def check_connection(self, server_id: int):
        server = db.session.get(SmtpServer, server_id)
        if server is None:
            abort(404)
        return self.connection_page(server.name, server, lambda: server_service.check_server(server))

    @expose("/check/builtin", methods=["GET", "POST"])
    def check_builtin(self):
        try:
            settings = server_service.builtin_server()
        except ServerError as error:
            flash(str(error), "error")
            return redirect(url_for(".index_view"))
        return self.connection_page(settings.name, settings, lambda: server_service.check_connection(settings))

    def connection_page(self, name: str, settings, run_check):
        form = AdminForm()
        report = run_check() if request.method == "POST" and form.validate() else None
        return self.render(
            "admin/smtp_check.html",
            name=name,
            settings=settings,
            form=form,
            report=report,
            return_url=url_for(".index_view"),
        )


class SenderIdentityView(SecureModelView):
    """Owners' sender addresses. An admin may look, fix a name or delete; an address is only
    ever confirmed by its owner following the link sent to it."""

    can_create = False
    column_list = ("id", "owner", "name", "email", "reply_to", "confirmed_at", "created_at")
    column_searchable_list = ("email", "name")
    column_default_sort = ("id", True)
    form_columns = ("name", "reply_to")

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        # The same rules as the owner's own form.
        try:
            sender_service.update_identity(model, model.name, model.reply_to)
        except IdentityError as error:
            raise ValidationError(str(error)) from None


# (view class, model, URL under /admin, name, menu category)
MODEL_VIEWS = [
    (UserView, User, "users", _l("Users"), _l("Accounts")),
    (RoleView, Role, "roles", _l("Roles"), _l("Accounts")),
    (ClientView, Client, "clients", _l("Clients"), _l("Content")),
    (MessageView, Message, "messages", _l("Messages"), _l("Content")),
    (MailingView, Mailing, "mailings", _l("Mailings"), _l("Content")),
    (SmtpServerView, SmtpServer, "smtp-servers", _l("SMTP servers"), _l("Sending")),
    (SenderIdentityView, SenderIdentity, "sender-identities", _l("Sender addresses"), _l("Sending")),
    (MailingRunView, MailingRun, "runs", _l("Runs"), _l("Sending log")),
    (DeliveryView, Delivery, "deliveries", _l("Deliveries"), _l("Sending log")),
    (MailingAttemptView, MailingAttempt, "attempts", _l("Attempts"), _l("Sending log")),
]


def admin_endpoint(url: str) -> str:
    # Prefixed so the panel's endpoints never clash with the site's own blueprints.
    return f"admin_{url}"


def register_admin(app: Flask) -> Admin:
    admin = Admin(
        name=_l("Mailer admin"), index_view=PanelIndexView(name=_l("Home"), url="/admin"), theme=Bootstrap4Theme()
    )
    for view_class, model, url, name, category in MODEL_VIEWS:
        admin.add_view(view_class(model, db, name=name, category=category, url=url, endpoint=admin_endpoint(url)))
    admin.add_link(MenuLink(name=_l("Back to Mailer"), endpoint="main.index"))
    admin.init_app(app)
    # Without this rule, /admin would redirect everyone to /admin/ and so reveal the panel.
    app.add_url_rule("/admin", endpoint="admin_entry", view_func=panel_entry)

    @app.before_request
    def hide_panel_files():
        # The panel's own CSS and scripts too: to others, nothing under /admin exists.
        if request.endpoint == "admin.static" and not AdminOnly().is_accessible():
            abort(404)

    return admin


def panel_entry():
    if not AdminOnly().is_accessible():
        abort(404)
    return redirect(url_for("admin.index"))

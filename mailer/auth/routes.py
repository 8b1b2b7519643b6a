from flask import abort, current_app, flash, redirect, render_template, request, send_from_directory, session, url_for
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user

from mailer.auth import bp
from mailer.auth.forms import (
    AvatarForm,
    ChangeEmailForm,
    ChangePasswordForm,
    EmailOnlyForm,
    LoginForm,
    LogoutForm,
    ProfileForm,
    RegistrationForm,
    RemoveAvatarForm,
    ResetPasswordForm,
)
from mailer.errors import render_error
from mailer.extensions import db, limiter
from mailer.i18n import SESSION_KEY, current_language
from mailer.i18n import lazy_text as _l
from mailer.permissions import can_view_all
from mailer.services import accounts
from mailer.services.accounts import AccountError
from mailer.urls import redirect_next

EMAIL_NOT_SENT = _l("We could not send the e-mail right now. Please try again in a few minutes.")


def login_attempt_key() -> str:
    """Throttle key for one account tried from one address: someone guessing a password is
    slowed down without locking the account's owner, who logs in from elsewhere, out."""
    return f"login:{get_remote_address()}:{accounts.lowercase_email(request.form.get('email', ''))}"


def login_failed(response) -> bool:
    # Only failures count: the owner's own logins never bring them nearer to a limit.
    return response.status_code != 302


def mail_recipient_key() -> str:
    """Throttle key for the address an e-mail would go to (registration, confirmation, reset,
    change of address): nobody can have one mailbox flooded, from however many addresses."""
    return "mail-to:" + accounts.lowercase_email(request.form.get("email", ""))


def form_accepted(response) -> bool:
    # A form with errors sends nothing and costs nothing; an accepted one redirects.
    return response.status_code == 302


def limit_mail(view):
    """The limits of every form that sends an e-mail: per client address and per recipient,
    shared by all these forms; only accepted forms count."""
    per_address = limiter.shared_limit(
        lambda: current_app.config["MAIL_LIMIT_PER_ADDRESS"],
        scope="mail-from",
        methods=["POST"],
        deduct_when=form_accepted,
    )
    per_recipient = limiter.shared_limit(
        lambda: current_app.config["MAIL_LIMIT_PER_RECIPIENT"],
        scope="mail-to",
        methods=["POST"],
        key_func=mail_recipient_key,
        deduct_when=form_accepted,
    )
    return per_address(per_recipient(view))


@bp.route("/register", methods=["GET", "POST"])
@limit_mail
def register():
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = RegistrationForm()
    if form.validate_on_submit():
        user = accounts.register(
            form.email.data,
            form.password.data,
            form.full_name.data or "",
            form.phone.data or "",
            form.country.data or "",
            form.timezone.data,
            locale=current_language(),
        )
        db.session.commit()
        if user is not None and not accounts.send_confirmation(user):
            flash(
                _(
                    "We could not send the e-mail right now. Please try again in a few minutes. "
                    "Use “Resend the confirmation link” on the login page."
                ),
                "warning",
            )
        # The same answer whether or not the address already had an account.
        flash(
            _(
                "Almost done: we sent a confirmation link to %(email)s.",
                email=accounts.lowercase_email(form.email.data),
            ),
            "success",
        )
        return redirect(url_for("auth.login"))
    return render_template("auth/register.html", form=form)


@bp.route("/confirm/<token>")
def confirm(token: str):
    try:
        user = accounts.confirm(token)
    except AccountError as error:
        db.session.rollback()
        flash(str(error), "danger")
        return redirect(url_for("auth.resend_confirmation"))
    db.session.commit()
    flash(_("Your e-mail address is confirmed. You can log in now."), "success")
    # The login form comes with the address filled in: only the password is left to type.
    return redirect(url_for("auth.login", email=user.email))


@bp.route("/confirm", methods=["GET", "POST"])
@limit_mail
def resend_confirmation():
    form = EmailOnlyForm()
    if form.validate_on_submit():
        user = accounts.find_user(form.email.data)
        if user is not None and not user.is_confirmed and user.is_active and not accounts.send_confirmation(user):
            flash(str(EMAIL_NOT_SENT), "warning")
        else:
            flash(_("If this address has an unconfirmed account, a new confirmation link is on its way."), "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/email_form.html", form=form, title=_("Resend the confirmation link"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"], methods=["POST"], deduct_when=login_failed)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
    methods=["POST"],
    key_func=login_attempt_key,
    deduct_when=login_failed,
)
def login():
    if current_user.is_authenticated:
        return redirect_next(request.args.get("next"))
    form = LoginForm()
    if request.method == "GET" and request.args.get("email"):
        form.email.data = request.args["email"][:254]
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(form.email.data, form.password.data)
        except AccountError as error:
            db.session.rollback()
            form.password.errors.append(str(error))
        else:
            db.session.commit()
            # A new session at login: nothing from before it (session fixation) carries over,
            # but the language the visitor chose.
            chosen_language = session.get(SESSION_KEY)
            session.clear()
            if chosen_language:
                session[SESSION_KEY] = chosen_language
            login_user(user, remember=form.remember.data)
            return redirect_next(request.args.get("next"))
    return render_template("auth/login.html", form=form)


@bp.errorhandler(429)
def too_many_login_attempts(error):
    """The throttled login answers with its form again (the address kept) and says why."""
    if request.endpoint != "auth.login":
        return render_error(429)
    form = LoginForm(formdata=None, email=request.form.get("email", "")[:254])
    form.password.errors = [_("Too many attempts in a short time. Wait a minute, then try again.")]
    return render_template("auth/login.html", form=form), 429


@bp.route("/logout", methods=["POST"])
def logout():
    form = LogoutForm()
    if form.validate_on_submit():
        if current_user.is_authenticated:
            # Session cookies live in the browser: moving the account's auth version on is what
            # makes every copy of them, and every remember-me cookie, useless from now on.
            accounts.end_sessions(current_user)
            db.session.commit()
        # Cleared first: logout_user() then leaves its mark to delete the remember-me cookie.
        # The page after it stays in the language the user was reading.
        language = current_language()
        session.clear()
        session[SESSION_KEY] = language
        logout_user()
        flash(_("You are logged out."), "info")
    return redirect(url_for("main.index"))


@bp.route("/reset", methods=["GET", "POST"])
@limit_mail
def reset_request():
    form = EmailOnlyForm()
    if form.validate_on_submit():
        accounts.send_password_reset(form.email.data)
        flash(_("If an account uses this address, a link to reset its password is on its way."), "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/email_form.html", form=form, title=_("Reset your password"))


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    try:
        accounts.user_for_reset_token(token)
    except AccountError as error:
        flash(str(error), "danger")
        return redirect(url_for("auth.reset_request"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        accounts.reset_password(token, form.password.data)
        db.session.commit()
        logout_user()
        flash(_("Your password is changed. Log in with the new one."), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_password.html", form=form)


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    form = ProfileForm(obj=current_user)
    if form.validate_on_submit():
        accounts.update_profile(
            current_user, form.full_name.data, form.phone.data, form.country.data, form.timezone.data
        )
        current_user.locale = form.locale.data or None
        session.pop(SESSION_KEY, None)
        db.session.commit()
        flash(_("Profile saved."), "success")
        return redirect(url_for("auth.profile"))
    return render_profile(profile_form=form)


def render_profile(**forms):
    forms.setdefault("profile_form", ProfileForm(obj=current_user, formdata=None))
    forms.setdefault("avatar_form", AvatarForm(formdata=None))
    forms.setdefault("email_form", ChangeEmailForm(formdata=None))
    forms.setdefault("password_form", ChangePasswordForm(formdata=None))
    status = 400 if any(form.errors for form in forms.values()) else 200
    return render_template("auth/profile.html", remove_avatar_form=RemoveAvatarForm(), **forms), status


@bp.route("/profile/avatar", methods=["POST"])
@login_required
def upload_avatar():
    form = AvatarForm()
    if form.validate_on_submit():
        try:
            accounts.save_avatar(current_user, form.avatar.data.read())
        except AccountError as error:
            form.avatar.errors.append(str(error))
        else:
            db.session.commit()
            flash(_("Avatar updated."), "success")
            return redirect(url_for("auth.profile"))
    return render_profile(avatar_form=form)


@bp.route("/profile/avatar/remove", methods=["POST"])
@login_required
def remove_avatar():
    if RemoveAvatarForm().validate_on_submit():
        accounts.remove_avatar(current_user)
        db.session.commit()
        flash(_("Avatar removed."), "info")
    return redirect(url_for("auth.profile"))


@bp.route("/avatar/<int:user_id>")
@login_required
def avatar(user_id: int):
    # One's own avatar; managers and admins see everyone's (the users page). Nobody else's.
    if user_id != current_user.id and not can_view_all():
        abort(404)
    user = db.session.get(accounts.User, user_id)
    if user is None or not user.avatar_filename:
        abort(404)
    return send_from_directory(accounts.avatar_dir(), user.avatar_filename, max_age=3600)


@bp.route("/profile/email", methods=["POST"])
@login_required
@limit_mail
def change_email():
    form = ChangeEmailForm()
    if form.validate_on_submit():
        if not current_user.check_password(form.password.data):
            form.password.errors.append(_("The current password is wrong."))
        else:
            try:
                accounts.request_email_change(current_user, form.email.data)
            except AccountError as error:
                form.email.errors.append(str(error))
            else:
                flash(
                    _("Follow the link we sent to %(email)s to confirm your new address.", email=form.email.data),
                    "info",
                )
                return redirect(url_for("auth.profile"))
    return render_profile(email_form=form)


@bp.route("/profile/email/<token>")
def confirm_email_change(token: str):
    try:
        accounts.confirm_email_change(token)
    except AccountError as error:
        db.session.rollback()
        flash(str(error), "danger")
    else:
        db.session.commit()
        flash(_("Your new e-mail address is confirmed."), "success")
    return redirect(url_for("auth.profile" if current_user.is_authenticated else "auth.login"))


@bp.route("/profile/password", methods=["POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not current_user.check_password(form.current_password.data):
            form.current_password.errors.append(_("The current password is wrong."))
        else:
            accounts.set_password(current_user, form.password.data)
            db.session.commit()
            # Other sessions end with the old auth version; this one continues on the new one.
            login_user(current_user._get_current_object(), remember=False)
            flash(_("Password changed. Other sessions have been logged out."), "success")
            return redirect(url_for("auth.profile"))
    return render_profile(password_form=form)

"""Languages of the interface (Flask-Babel): which one a request gets, and formatting of dates
and numbers for it, in the viewer's time zone.

The language is, in order: the user's profile setting; the one chosen with the switcher before
logging in (kept in the session); the browser's Accept-Language; DEFAULT_LOCALE. Outside a
request (the CLI, the worker) it is English unless a caller chooses one with `force_locale`,
as the worker does for the owner of a mailing.
"""

from contextlib import nullcontext
from datetime import date, datetime

from babel import Locale
from babel.dates import format_datetime, format_skeleton
from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import (
    Babel,
    LazyString,
    force_locale,
    get_locale,
    get_timezone,
    get_translations,
    gettext,
    pgettext,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField

from mailer.timezones import user_zone

# Each language named in itself, as the switcher shows it.
LANGUAGES = {"en": "English", "ru": "Русский"}
SESSION_KEY = "locale"

babel = Babel()


class LazyText(LazyString):
    """A string translated when it is used (form labels, messages made at import time), and
    escaped in templates like any other text: Flask-Babel's own lazy strings pass as markup."""

    def __getattribute__(self, name):
        if name == "__html__":
            raise AttributeError(name)
        return super().__getattribute__(name)


def lazy_text(string: str, **variables) -> LazyText:
    return LazyText(gettext, string, **variables)


def lazy_ptext(context: str, string: str, **variables) -> LazyText:
    return LazyText(pgettext, context, string, **variables)


def is_language(code: str | None) -> bool:
    return code in LANGUAGES


def select_locale() -> str:
    if not has_request_context():
        return "en"
    user_choice = getattr(current_user, "locale", None) if current_user.is_authenticated else None
    for choice in (user_choice, session.get(SESSION_KEY)):
        if is_language(choice):
            return choice
    return request.accept_languages.best_match(LANGUAGES) or current_app.config["DEFAULT_LOCALE"]


def select_timezone() -> str:
    return user_zone(current_user).key if has_request_context() else "UTC"


def user_language(user) -> str:
    """The language to write to a user in when they are not the one asking (the footer and the
    unsubscribe page of their mailings, e-mails sent for them): their setting, else the default."""
    choice = getattr(user, "locale", None)
    return choice if is_language(choice) else current_app.config["DEFAULT_LOCALE"]


def language_for(user) -> str:
    """The language of an e-mail to a user: their setting, else the one they are reading now."""
    choice = getattr(user, "locale", None)
    return choice if is_language(choice) else current_language()


def in_language_of(user):
    """A `with` block in the user's language (see `user_language`); no user, no change."""
    return force_locale(user_language(user)) if user is not None else nullcontext()


def current_language() -> str:
    return str(get_locale() or "en")


# English keeps the site's year-first dates (2030-01-15 09:00), which sort and read the same
# everywhere; other languages get CLDR's patterns for the locale.
FIXED_PATTERNS = {
    "en": {
        "date": "yyyy-MM-dd",
        "datetime": "yyyy-MM-dd HH:mm",
        "seconds": "yyyy-MM-dd HH:mm:ss",
        "time": "HH:mm:ss",
        "day": "EEE dd MMM y",
        "short day": "dd MMM",
    },
}
SKELETONS = {"date": "yMMMd", "time": "Hms", "day": "yMMMEd", "short day": "MMMd"}


def date_pattern(style: str, locale: Locale) -> str | None:
    return FIXED_PATTERNS.get(str(locale), {}).get(style)


def localtime(value: datetime | date | None, style: str = "datetime") -> str:
    """A UTC timestamp in the viewer's time zone, written the way their language writes dates:
    `date` (the day), `datetime` (to the minute), `seconds`, `time` (24-hour clock), or for a
    calendar day (a `date`), `day` (with the weekday) and `short day`."""
    if value is None:
        return ""
    locale = Locale.parse(current_language())
    if not isinstance(value, datetime):
        value, zone = datetime(value.year, value.month, value.day), None
    else:
        zone = get_timezone()
    pattern = date_pattern(style, locale)
    if pattern:
        return format_datetime(value, pattern, tzinfo=zone, locale=locale)
    if style in SKELETONS:
        return format_skeleton(SKELETONS[style], value, tzinfo=zone, locale=locale)
    day = format_skeleton("yMMMd", value, tzinfo=zone, locale=locale)
    time = format_skeleton("Hms" if style == "seconds" else "Hm", value, tzinfo=zone, locale=locale)
    # CLDR's own way of joining a day and a time ("{1}, {0}", "{1} 'at' {0}"...).
    return str(locale.datetime_formats["medium"]).replace("{1}", day).replace("{0}", time)


def language_name(code: str) -> str:
    return LANGUAGES.get(code, code)


def territory_name(code: str) -> str:
    """A country's name in the viewer's language (CLDR, shipped with Babel)."""
    return Locale.parse(current_language()).territories.get(code, code)


def forget_locale() -> None:
    g.pop("_flask_babel", None)


def request_translations():
    """The catalogue of the request's language, found once per request. A page translates a
    hundred words or more, and Flask-Babel finds the language and its catalogue again for each
    (7 µs a word). Kept in the slot of Flask-Babel's state that its own `refresh` and
    `force_locale` reset, so a block in another language gets that language's catalogue."""
    state = getattr(g, "_flask_babel", None)
    translations = getattr(state, "babel_translations", None)
    if translations is None:
        translations = get_translations()
        if state is not None:
            state.babel_translations = translations
    return translations


def install_template_gettext(app: Flask) -> None:
    """Templates translate through `request_translations`, as Flask-Babel's do through
    `get_translations`; `_` is the same function as `gettext` rather than a second call to it."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda string: request_translations().ugettext(string),
        ngettext=lambda singular, plural, n: request_translations().ungettext(singular, plural, n),
        pgettext=lambda context, string: request_translations().upgettext(context, string),
        npgettext=lambda context, singular, plural, n: request_translations().unpgettext(context, singular, plural, n),
        newstyle=True,
    )
    app.jinja_env.globals["_"] = app.jinja_env.globals["gettext"]


def init_i18n(app: Flask) -> None:
    if not is_language(app.config["DEFAULT_LOCALE"]):
        raise RuntimeError(
            f"DEFAULT_LOCALE must be one of {', '.join(LANGUAGES)}, not {app.config['DEFAULT_LOCALE']!r}."
        )
    app.config.setdefault("BABEL_DEFAULT_LOCALE", app.config["DEFAULT_LOCALE"])
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    install_template_gettext(app)
    # Flask-Babel keeps its choice in `g`, which lives as long as the app context: where one
    # context serves several requests (the tests' clients), each request must choose afresh.
    app.before_request_funcs.setdefault(None, []).insert(0, forget_locale)
    app.add_template_filter(localtime)
    app.add_template_global(LANGUAGES, "languages")
    app.add_template_global(current_language)


class LanguageForm(FlaskForm):
    """The navbar's switcher: one button per language, and the page to come back to."""

    language = HiddenField()
    next = HiddenField()

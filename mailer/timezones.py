"""Time zones and countries offered in forms, from maintained data (tzdata, pycountry)."""

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import pycountry
from babel import Locale

UTC = ZoneInfo("UTC")


@cache
def timezone_choices() -> list[tuple[str, str]]:
    names = sorted(name for name in available_timezones() if "/" in name or name == "UTC")
    return [(name, name.replace("_", " ")) for name in names]


@cache
def country_choices(language: str = "en") -> list[tuple[str, str]]:
    """ISO 3166 countries (pycountry), named and sorted in `language` (CLDR names, from Babel)."""
    names = Locale.parse(language).territories
    countries = [(c.alpha_2, names.get(c.alpha_2, c.name)) for c in pycountry.countries]
    return [("", "—")] + sorted(countries, key=lambda choice: choice[1].casefold())


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def user_zone(user) -> ZoneInfo:
    if user is not None and getattr(user, "is_authenticated", False):
        return zone(user.timezone)
    return UTC

"""The Russian catalogue: complete, nothing fuzzy, the placeholders kept, and up to date with
the strings of the code (`make translations` was run after the last change)."""

import re
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "mailer" / "translations" / "ru" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# As in babel.cfg and the Makefile's extract command.
METHODS = [("mailer/**.py", "python"), ("mailer/templates/**.html", "jinja2"), ("mailer/templates/**.txt", "jinja2")]
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_pgettext": ((1, "c"), 2), "lazy_ptext": ((1, "c"), 2)}


def russian_catalogue():
    with CATALOGUE.open("rb") as file:
        return read_po(file)


def entries():
    return [message for message in russian_catalogue() if message.id]


def forms(value) -> list[str]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def test_every_entry_is_translated_and_none_is_fuzzy():
    untranslated = [message.id for message in entries() if not all(forms(message.string))]
    fuzzy = [message.id for message in entries() if message.fuzzy]
    assert not untranslated, f"untranslated: {untranslated}"
    assert not fuzzy, f"fuzzy: {fuzzy}"
    assert len(entries()) > 500


def test_russian_has_three_plural_forms():
    catalogue = russian_catalogue()
    assert catalogue.num_plurals == 3
    plurals = [message for message in entries() if message.pluralizable]
    assert plurals and all(len(message.string) == 3 for message in plurals)


def test_translations_keep_every_placeholder():
    wrong = []
    for message in entries():
        expected = set().union(*(PLACEHOLDER.findall(text) for text in forms(message.id)))
        for text in forms(message.string):
            # A plural's count may be left out of a form ("one" in a language that says it in
            # words), but nothing may appear that the code does not pass.
            found = set(PLACEHOLDER.findall(text))
            missing = expected - found - ({"num"} if message.pluralizable else set())
            if found - expected or missing:
                wrong.append((message.id, text))
    assert not wrong, wrong


def test_the_catalogue_has_every_string_of_the_code():
    in_code = {
        (context, msgid if isinstance(msgid, str) else msgid[0])
        for _file, _line, msgid, _comments, context in extract_from_dir(
            str(ROOT), METHODS, keywords=KEYWORDS, comment_tags=()
        )
    }
    in_catalogue = {(message.context, forms(message.id)[0]) for message in entries()}
    missing = sorted(in_code - in_catalogue, key=str)
    assert not missing, f"run `make translations` and translate: {missing}"

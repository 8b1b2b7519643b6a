import re
import time

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from mailer.extensions import db
from mailer.services.message_templates import TEXT_ENV, TemplateProblem, check_template
from mailer.services.rendering import MailRenderer, build_mail
from mailer.services.unsubscribe import client_for_unsubscribe_token
from tests.factories import add_client, add_message


@pytest.mark.parametrize(
    "source",
    [
        "Plain text without placeholders",
        "Hello {{ name }}, this goes to {{ email }}. Leave: {{ unsubscribe_url }}",
        "Hello {{ name|default('friend')|title }}",
        "{% if name %}Dear {{ name }}{% else %}Hello{% endif %},\n{{ email|upper }}",
        "{{ name|truncate(10) ~ '!' if name is defined else 'Hi' }}",
        "{# a note for colleagues #}Hi",
    ],
)
def test_valid_templates_pass(source):
    assert check_template(source) is None


@pytest.mark.parametrize(
    "source, expected",
    [
        ("Hello {{ name", "Template error on line 1: unexpected end of template"),
        ("First line\nHello {{ name | }}", "Template error on line 2:"),
        ("Hi {% if name %}no end", "Template error on line 1:"),
        (
            "Hi {{ first_name }}",
            "unknown placeholder {{ first_name }}; use {{ name }}, {{ email }} or {{ unsubscribe_url }}",
        ),
        ("Line\n\n{{ phone }}", "Template error on line 3: unknown placeholder {{ phone }}"),
        ("{{ name|center(100000000) }}", "the filter 'center' cannot be used"),
        ("{{ name is prime }}", "unknown test 'prime'"),
        ("{% if name > 'm' %}Late{% endif %}", "Template error for a client without a name: 'name' is undefined"),
        ("{{ name|replace('a') }}", "Template error: do_replace() missing 1 required positional argument"),
        ("{{" + "(" * 5000 + "name" + ")" * 5000 + "}}", "Template error: the template is nested too deeply."),
        ("{% if name %}" * 3000 + "{% endif %}" * 3000, "Template error: the template is nested too deeply."),
    ],
)
def test_broken_templates_and_unknown_placeholders_are_refused(source, expected):
    assert expected in check_template(source)


@pytest.mark.parametrize(
    "source",
    [
        "{{ email.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ name['__class__'] }}",
        "{{ name|attr('__class__') }}",
        "{{ range(10) }}",
        "{{ lipsum() }}",
        "{% for i in [1, 2] %}{{ i }}{% endfor %}",
        "{% set x = 1 %}",
        "{% include 'base.html' %}",
        "{% extends 'base.html' %}",
        "{% macro m() %}{% endmacro %}",
    ],
)
def test_templates_reaching_for_attributes_or_builtins_are_refused(source):
    assert check_template(source).startswith("Template error")


def test_expensive_expressions_are_refused_without_being_computed():
    started = time.monotonic()
    assert check_template("{{ 9 ** 9 ** 9 ** 9 }}") is not None
    assert check_template("{{ 'x' * 1000000000 }}") is not None
    assert time.monotonic() - started < 5  # evaluated, the first one would never finish


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ email.__class__ }}",
        "{{ email.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ range(10) }}",
    ],
)
def test_the_sandbox_renders_attribute_tricks_harmlessly(source):
    """The second line of defence, for content that reached the database without the check:
    the sandbox refuses, or renders nothing."""
    try:
        output = TEXT_ENV.from_string(source).render(email="ada@example.com")
    except (SecurityError, UndefinedError):
        return
    assert output == ""


def test_a_stored_message_with_a_forbidden_template_cannot_be_built(user):
    message = add_message(user, body_text="{{ email.__class__.__mro__ }}")
    with pytest.raises(TemplateProblem, match="attributes"):
        build_mail(message, add_client(user), message_id="<m@x>")
    # Asked again (the next recipient), the same clear error.
    with pytest.raises(TemplateProblem, match="attributes"):
        build_mail(message, add_client(user, "b@example.com"), message_id="<m@x>")


def test_placeholders_are_rendered_per_client(user):
    message = add_message(
        user,
        subject="News for {{ name }}",
        body_text="Dear {{ name }}, we write to {{ email }}.",
        body_html="<p>Dear {{ name }}, we write to {{ email }}.</p>",
    )
    ada, bob = add_client(user, "ada@example.com", "Ada Lovelace"), add_client(user, "bob@example.com", "Bob Babbage")
    first, second = (build_mail(message, c, message_id=f"<{c.id}@x>") for c in (ada, bob))
    assert first.subject == "News for Ada Lovelace" and second.subject == "News for Bob Babbage"
    assert first.body.startswith("Dear Ada Lovelace, we write to ada@example.com.")
    assert second.body.startswith("Dear Bob Babbage, we write to bob@example.com.")
    assert second.html.startswith("<p>Dear Bob Babbage, we write to bob@example.com.</p>")
    assert first.recipients == [("Ada Lovelace", "ada@example.com")]


def test_a_client_without_a_name_gets_the_default(user):
    message = add_message(
        user, subject="Hello {{ name|default('friend') }}", body_text="Hi {{ name }}!", body_html=None
    )
    mail = build_mail(message, add_client(user, "anon@example.com", ""), message_id="<m@x>")
    assert mail.subject == "Hello friend"
    assert mail.body.startswith("Hi !")
    assert mail.html is None


def test_html_escapes_the_clients_data_and_text_keeps_it(user):
    message = add_message(
        user,
        subject="For {{ name }}",
        body_text="Dear {{ name }}",
        body_html='<p>Dear {{ name }}</p><a href="{{ unsubscribe_url }}">leave</a>',
    )
    client = add_client(user, "eve@example.com", 'Eve <script>alert("x")</script>')
    mail = build_mail(message, client, message_id="<m@x>")
    assert "<script>" not in mail.html
    assert "Dear Eve &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in mail.html
    assert mail.body.startswith('Dear Eve <script>alert("x")</script>')
    assert mail.subject == 'For Eve <script>alert("x")</script>'


def test_the_subject_stays_one_line(user):
    message = add_message(user, subject="Hello\n{{ name }}\r\nBcc: everyone@example.com")
    mail = build_mail(message, add_client(user, "nl@example.com", "Line\nBreak"), message_id="<m@x>")
    assert mail.subject == "Hello Line Break Bcc: everyone@example.com"
    assert not mail.has_bad_headers()
    assert mail.recipients == [("Line Break", "nl@example.com")]


def test_the_compiled_message_is_reused_until_the_message_changes(user):
    message = add_message(user)
    renderer = MailRenderer.for_message(message)
    assert MailRenderer.for_message(message) is renderer
    message.body_text = "Changed for {{ name }}"
    db.session.commit()
    assert MailRenderer.for_message(message) is not renderer


def test_the_unsubscribe_placeholder_is_the_clients_link(user):
    message = add_message(
        user, body_text="Leave any time: {{ unsubscribe_url }}", body_html='<a href="{{ unsubscribe_url }}">Leave</a>'
    )
    ada = add_client(user)
    add_client(user, "bob@example.com", "Bob")
    mail = build_mail(message, ada, message_id="<m@x>")
    in_text = re.match(r"Leave any time: http://mailer\.test/unsubscribe/(\S+)", mail.body).group(1)
    in_html = re.match(r'<a href="http://mailer\.test/unsubscribe/([^"]+)">Leave</a>', mail.html).group(1)
    assert client_for_unsubscribe_token(in_text) == client_for_unsubscribe_token(in_html) == ada

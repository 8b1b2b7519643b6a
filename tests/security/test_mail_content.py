"""What a message's template can do to the mail that is sent: no bombs, no unsafe HTML."""

from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from mailer.extensions import db
from mailer.models import Message
from mailer.services.message_templates import TemplateProblem
from mailer.services.rendering import build_mail
from tests.factories import add_client, add_message

BOMB = '{{ email|replace("", email)|replace("", email)|replace("", email)|replace("", email) }}'
FORM = {"subject": "News", "body_text": "Hello {{ name }}"}


def test_a_template_bomb_is_refused_when_the_message_is_saved(logged_in):
    response = logged_in.post("/messages/new", data={**FORM, "body_text": BOMB})
    assert response.status_code == 400
    assert "too large once rendered" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0


def test_a_template_that_grows_with_the_address_is_refused_for_long_addresses(logged_in):
    # Small for a short address, squared twice for a long one: checked with the longest values.
    two_levels = '{{ email|replace("", email)|replace("", email) }}'
    response = logged_in.post("/messages/new", data={**FORM, "body_text": two_levels})
    assert response.status_code == 400 and "too large once rendered" in response.get_data(as_text=True)


def test_a_bomb_that_reached_the_database_fails_alone_when_sent(user):
    """Content written by other means (the admin panel before the check, an older version) is
    checked again as it is rendered: the e-mail fails with the reason, nothing huge is built."""
    message = add_message(user, subject="News", body_text='{{ email|replace("", email)|replace("", email) }}')
    long_address = add_client(user, "a" * 60 + "@" + "b" * 60 + ".example.com", "Long")
    db.session.commit()
    with pytest.raises(TemplateProblem, match="too large once rendered"):
        build_mail(message, long_address, message_id="<m@x>")


# Clean for nh3 when saved: the quotes after {% endif %} are text. A false {% if %} removes the
# end of the title attribute, and they become an event handler.
REARRANGED = '<p>Hello {{ name }}</p><p title="{% if false %}">{% endif %}" onmouseover="alert(1)" x="</p>'


def test_html_that_a_template_rearranges_is_cleaned_again_in_the_sent_mail(logged_in, user, work, smtp_sink):
    response = logged_in.post("/messages/new", data={**FORM, "body_html": REARRANGED})
    assert response.status_code == 302
    message_id = int(response.location.rsplit("/", 1)[1])
    add_client(user, "ada@example.com", "Ada Lovelace")
    db.session.commit()
    logged_in.post(f"/messages/{message_id}/test")
    work()
    [mail] = smtp_sink.wait_for(1)
    assert "Ada Lovelace" in mail.html
    assert not [name for name in attribute_names(mail.html) if name.startswith("on")], mail.html


def attribute_names(html: str) -> list[str]:
    """The attributes of every element, as a browser's parser reads them."""
    names = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            names.extend(name for name, _ in attrs)

    Collector().feed(html)
    return names

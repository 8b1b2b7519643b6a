import re

from mailer.extensions import mail
from mailer.services.mime import make_message_id
from mailer.services.rendering import build_mail
from mailer.services.unsubscribe import client_for_unsubscribe_token
from tests.factories import add_client, add_message
from tests.support import local_path

UNSUBSCRIBE_HEADER = re.compile(r"^<(http://mailer\.test/unsubscribe/[A-Za-z0-9_.-]+)>$")


def test_message_ids_name_the_delivery_in_the_configured_domain(app):
    app.config["MAIL_MESSAGE_ID_DOMAIN"] = "news.example.com"
    first, second = make_message_id(42), make_message_id(42)
    assert re.fullmatch(r"<mailing\.42\.[0-9a-f]{16}@news\.example\.com>", first)
    assert first != second


def test_the_sink_receives_both_parts_the_headers_and_the_unsubscribe_link(app, client, smtp_sink, user):
    message = add_message(
        user,
        subject="Hello {{ name }}",
        body_text="Dear {{ name }},\nour news.",
        body_html="<html><body><p>Dear {{ name }},</p><p>our news.</p></body></html>",
    )
    ada = add_client(user, "ada@example.com", "Ada Lovelace")
    message_id = make_message_id(7)
    mail.send(build_mail(message, ada, message_id=message_id, sender="News <news@example.com>"))

    received = smtp_sink.wait_for(1)
    assert len(received) == 1
    got = received[0]
    assert got.recipients == ["ada@example.com"]
    assert got.sender == "news@example.com"
    headers = got.message
    assert headers["Message-ID"] == message_id
    assert headers["Subject"] == "Hello Ada Lovelace"
    assert headers["To"] == "Ada Lovelace <ada@example.com>"
    assert headers["From"] == "News <news@example.com>"
    assert headers["Date"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = UNSUBSCRIBE_HEADER.match(headers["List-Unsubscribe"]).group(1)
    assert client_for_unsubscribe_token(link.rsplit("/", 1)[1]) == ada

    assert headers.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in headers.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    # Line breaks travel as CRLF, as MIME wants.
    assert got.text.startswith("Dear Ada Lovelace,\r\nour news.")
    assert link in got.text
    assert f'<a href="{link}"' in got.html
    # The footer goes inside the HTML document, before </body>.
    assert got.html.rstrip().endswith("</body></html>")

    # The link in the mail leads to the confirmation page.
    page = client.get(local_path(link))
    assert page.status_code == 200 and b"ada@example.com" in page.data


def test_a_text_only_message_is_a_single_plain_part(smtp_sink, user):
    message = add_message(user, body_text="Just text for {{ email }}", body_html=None)
    client = add_client(user)
    mail.send(build_mail(message, client, message_id=make_message_id(1)))
    got = smtp_sink.wait_for(1)[0]
    assert got.message.get_content_type() == "text/plain"
    assert not got.message.is_multipart()
    assert got.text.startswith("Just text for ada@example.com")
    link = UNSUBSCRIBE_HEADER.match(got.message["List-Unsubscribe"]).group(1)
    assert link in got.text
    assert got.html is None


def test_non_ascii_text_and_long_lines_arrive_intact(smtp_sink, user):
    long_line = "Ünïcödé " * 700  # a 5,600-character line, far over SMTP's 998
    message = add_message(
        user, subject="Grüße, {{ name }} — 🎉", body_text=long_line + "\n.\nThe end.", body_html=f"<p>{long_line}</p>"
    )
    client = add_client(user, "zoe@example.com", "Zoë Ørsted")
    mail.send(build_mail(message, client, message_id=make_message_id(3)))
    got = smtp_sink.wait_for(1)[0]
    assert got.subject == "Grüße, Zoë Ørsted — 🎉"
    assert str(got.message["To"]) == "Zoë Ørsted <zoe@example.com>"
    assert got.text.startswith(long_line + "\r\n.\r\nThe end.")
    assert got.html.startswith(f"<p>{long_line}</p>")
    raw = got.message.as_bytes()
    assert max(len(line) for line in raw.split(b"\n")) <= 998


def test_parts_go_as_they_are_when_they_can_and_quoted_printable_otherwise(smtp_sink, user):
    long_ascii_line = "word " * 400
    message = add_message(user, body_text="Short ASCII lines\nfor {{ name }}", body_html=f"<p>{long_ascii_line}</p>")
    mail.send(build_mail(message, add_client(user), message_id=make_message_id(1)))
    plain, html = smtp_sink.wait_for(1)[0].message.iter_parts()
    assert plain["Content-Transfer-Encoding"] == "7bit"
    assert html["Content-Transfer-Encoding"] == "quoted-printable"
    assert html.get_content().startswith(f"<p>{long_ascii_line}</p>")


def test_many_messages_over_one_connection(smtp_sink, user):
    message = add_message(user)
    clients = [add_client(user, f"c{number}@example.com", f"Client {number}") for number in range(5)]
    with mail.connect() as connection:
        for client in clients:
            connection.send(build_mail(message, client, message_id=make_message_id(client.id)))
    received = smtp_sink.wait_for(5)
    assert sorted(r.recipients[0] for r in received) == [c.email for c in clients]
    for got in received:
        name = next(c.full_name for c in clients if c.email == got.recipients[0])
        assert got.subject == f"Hello {name}"
    assert len({r.message["Message-ID"] for r in received}) == 5


def test_placeholder_only_templates_are_stamped_and_give_exactly_what_jinja_gives(app):
    from mailer.services.message_templates import HTML_ENV, TEXT_ENV
    from mailer.services.rendering import Stamp, _compile

    stamped = [
        "Hello {{ name }}",
        "Dear {{name}},\n\nnews for {{ email }}.\n\n",
        "{# note #}Hi {{ name }}\n",
        '<p>Hi {{ name }}</p><a href="{{ unsubscribe_url }}">x</a>',
        "",
        "{% raw %}{{ name }}{% endraw %}",
    ]
    rendered_by_jinja = ["{{ name|upper }}", "{% if name %}Hi {{ name }}{% else %}Hello{% endif %}", "{{ name ~ '!' }}"]
    values = [
        {"name": "Ann <b>&\"'", "email": "ann@example.com", "unsubscribe_url": "https://x.test/u?a=1&b=2"},
        {"email": "nameless@example.com", "unsubscribe_url": "https://x.test/u"},
    ]
    for environment in (TEXT_ENV, HTML_ENV):
        for source in stamped + rendered_by_jinja:
            compiled = _compile(environment, source)
            assert isinstance(compiled, Stamp) == (source in stamped), source
            for value in values:
                assert compiled.render(value) == environment.from_string(source).render(value), source

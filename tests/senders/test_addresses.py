"""International addresses: IDNA domains, SMTPUTF8 local parts, and a clear sentence when a
server cannot take them. Sent through real aiosmtpd sinks with and without SMTPUTF8."""

import smtplib

import pytest

from mailer.services.addresses import (
    AddressError,
    envelope_address,
    header_address,
    mail_options,
    smtputf8_problem,
)
from tests.factories import make_user
from tests.support import login

RUSSIAN = "тест@пример.рф"
RUSSIAN_DOMAIN_ASCII = "xn--e1afmkfd.xn--p1ai"


def test_the_domain_travels_in_idna_and_the_local_part_as_it_is():
    assert envelope_address(RUSSIAN).address == f"тест@{RUSSIAN_DOMAIN_ASCII}"
    assert envelope_address(RUSSIAN).needs_smtputf8
    assert envelope_address("info@пример.рф").address == f"info@{RUSSIAN_DOMAIN_ASCII}"
    assert not envelope_address("info@пример.рф").needs_smtputf8
    assert envelope_address("Bob@Example.COM").address == "Bob@example.com"


def test_header_addresses_are_ascii_unless_the_local_part_is_not():
    assert header_address("Алиса", "info@пример.рф") == f"=?utf-8?b?0JDQu9C40YHQsA==?= <info@{RUSSIAN_DOMAIN_ASCII}>"
    assert header_address("Smith, Bob", "bob@example.com") == '"Smith, Bob" <bob@example.com>'
    assert header_address("", RUSSIAN) == RUSSIAN
    assert header_address('Тест "T"', RUSSIAN) == '"Тест \\"T\\"" <тест@пример.рф>'


def test_an_invalid_international_domain_is_a_clear_error():
    with pytest.raises(AddressError, match="not a valid international domain name"):
        envelope_address("a@exa mple.рф")


def send(port: int, sender: str, recipient: str, body: bytes, offers_smtputf8_name="Test relay") -> str | None:
    """Send one message as the sending engine does with these helpers; the refusal sentence or None."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        problem = smtputf8_problem(smtp.has_extn("smtputf8"), sender, recipient, server_name=offers_smtputf8_name)
        if problem:
            return problem
        smtp.sendmail(
            envelope_address(sender).address,
            [envelope_address(recipient).address],
            body,
            mail_options=mail_options(sender, recipient),
        )
    return None


def message_to(recipient: str) -> bytes:
    return (
        f"From: {header_address('Alice', 'alice@example.com')}\r\n"
        f"To: {header_address('Тест', recipient)}\r\n"
        "Subject: Hello\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nПривет\r\n"
    ).encode()


def test_a_server_with_smtputf8_receives_the_international_address(app, smtp_sink):
    assert send(smtp_sink.port, "alice@example.com", RUSSIAN, message_to(RUSSIAN)) is None
    [mail] = smtp_sink.wait_for(1)
    assert mail.recipients == [f"тест@{RUSSIAN_DOMAIN_ASCII}"]
    assert 'To: "Тест" <тест@пример.рф>'.encode() in mail.raw


def test_a_server_without_smtputf8_gets_nothing_and_the_reason_is_a_sentence(app, ascii_sink):
    ascii_sink.reset()
    problem = send(ascii_sink.port, "alice@example.com", RUSSIAN, message_to(RUSSIAN))
    assert problem == (
        "Test relay does not accept international addresses (it does not offer SMTPUTF8), and "
        "тест@пример.рф has characters other than Latin letters, digits and punctuation before "
        "the @: it cannot be sent through this server."
    )
    assert ascii_sink.received == []


def test_an_international_domain_needs_no_smtputf8(app, ascii_sink):
    ascii_sink.reset()
    recipient = "info@пример.рф"
    assert send(ascii_sink.port, "alice@example.com", recipient, message_to(recipient)) is None
    [mail] = ascii_sink.wait_for(1)
    assert mail.recipients == [f"info@{RUSSIAN_DOMAIN_ASCII}"]


def test_the_client_form_accepts_an_international_address(app, client):
    owner = make_user("alice@example.com")
    login(client, owner.email)
    response = client.post("/clients/new", data={"email": RUSSIAN, "full_name": "Тест"})
    assert response.status_code == 302
    assert "тест@пример.рф" in client.get("/clients/").get_data(as_text=True)

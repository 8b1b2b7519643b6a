"""The pieces the sending engine puts together, end to end: a mailing's server and sender, the
message built with them for an international client, signed with the server's DKIM key, and
sent with the envelope helpers to a real sink."""

import smtplib

import dkim

from mailer.extensions import db
from mailer.models import Client
from mailer.services import senders, servers
from mailer.services.addresses import envelope_address, mail_options, smtputf8_problem
from mailer.services.dkim_signing import public_key_record, sign
from mailer.services.rendering import build_mail
from tests.factories import add_identity, add_mailing, add_message, add_server
from tests.senders.test_dkim import dns_with, rsa_pem


def send_like_the_engine(mailing, client: Client) -> str | None:
    server = servers.server_for_mailing(mailing)
    sender = senders.sender_for_mailing(mailing)
    data = build_mail(
        mailing.message,
        client,
        message_id="<mailing.7.abc@mailer.test>",
        sender=sender.from_header,
        reply_to=sender.reply_to,
    ).as_bytes()
    if server.dkim is not None:
        data = sign(data, server.dkim)
    with smtplib.SMTP(server.host, server.port, timeout=10) as smtp:
        smtp.ehlo()
        problem = smtputf8_problem(
            smtp.has_extn("smtputf8"), sender.envelope_from, client.email, server_name=server.name
        )
        if problem:
            return problem
        smtp.sendmail(
            sender.envelope_from,
            [envelope_address(client.email).address],
            data,
            mail_options=mail_options(sender.envelope_from, client.email),
        )
    return None


def test_an_international_client_gets_a_signed_message_from_the_owners_address(app, owner, smtp_sink):
    key = rsa_pem()
    server = add_server(
        name="Signed relay", port=smtp_sink.port, is_default=True, dkim_selector="s1", dkim_domain="пример.рф"
    )
    servers.prepare_server(server, new_dkim_key=key)
    db.session.commit()
    add_identity(owner, name="Алиса", email="info@пример.рф", reply_to="help@пример.рф")
    client = Client(owner_id=owner.id, email="тест@пример.рф", full_name="Тест Тестович")
    db.session.add(client)
    db.session.commit()
    mailing = add_mailing(owner, add_message(owner), [client])

    assert send_like_the_engine(mailing, client) is None

    [mail] = smtp_sink.wait_for(1)
    assert mail.sender == "info@xn--e1afmkfd.xn--p1ai"
    assert mail.recipients == ["тест@xn--e1afmkfd.xn--p1ai"]
    head = mail.raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    assert "\r\nFrom: =?utf-8?b?0JDQu9C40YHQsA==?= <info@xn--e1afmkfd.xn--p1ai>\r\n" in head
    assert '\r\nTo: "Тест Тестович" <тест@пример.рф>\r\n' in head
    assert "\r\nReply-To: help@xn--e1afmkfd.xn--p1ai\r\n" in head
    assert dkim.verify(mail.raw, dnsfunc=dns_with("s1", "xn--e1afmkfd.xn--p1ai", public_key_record(key)))


def test_the_same_message_through_a_server_without_smtputf8_fails_with_a_sentence(app, owner, ascii_sink):
    ascii_sink.reset()
    add_server(name="Old relay", port=ascii_sink.port, is_default=True)
    client = Client(owner_id=owner.id, email="тест@пример.рф", full_name="Тест")
    db.session.add(client)
    db.session.commit()
    mailing = add_mailing(owner, add_message(owner), [client])

    problem = send_like_the_engine(mailing, client)

    assert problem.startswith(
        "Old relay does not accept international addresses (it does not offer SMTPUTF8), "
        "and тест@пример.рф has characters other than Latin letters"
    )
    assert ascii_sink.received == []

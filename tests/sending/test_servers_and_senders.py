"""The sending engine with the admin's SMTP servers and the owners' sender addresses: each
mailing leaves through its server, from its sender, signed with the server's DKIM key;
international addresses go out with SMTPUTF8 or fail with a sentence."""

import dkim
import pytest
from sqlalchemy import insert

from mailer.extensions import db
from mailer.models import AttemptStatus, Client, DeliveryStatus, Mailing, mailing_clients
from mailer.services import dispatch, servers
from mailer.services.dkim_signing import public_key_record
from tests.factories import add_identity, add_server, make_mailing
from tests.senders.test_dkim import dns_with, rsa_pem
from tests.support import SmtpSink, attempts, deliveries, reload_run


@pytest.fixture
def second_sink():
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def ascii_only_sink():
    sink = SmtpSink(enable_SMTPUTF8=False)
    yield sink
    sink.stop()


def add_client_to(mailing: Mailing, email: str, name: str = "") -> None:
    client = Client(owner_id=mailing.owner_id, email=email, full_name=name, comment="")
    db.session.add(client)
    db.session.flush()
    db.session.execute(insert(mailing_clients), [{"mailing_id": mailing.id, "client_id": client.id}])
    db.session.commit()


def test_each_mailing_leaves_through_its_own_server_from_its_sender(app, owner, smtp_sink, second_sink, work):
    second = add_server(name="Second relay", port=second_sink.port)
    add_identity(owner, name="Sam's Shop", email="news@shop.example", reply_to="help@shop.example")
    through_default = {client.email for client in make_mailing(owner, clients=2).clients}
    second_mailing = make_mailing(owner, clients=3)
    through_second = {client.email for client in second_mailing.clients}
    second_mailing.smtp_server_id = second.id
    db.session.commit()
    dispatch.dispatch_due_mailings()
    work()

    assert len(smtp_sink.received) == 2 and len(second_sink.received) == 3
    assert {mail.recipients[0] for mail in second_sink.received} == through_second
    for mail in smtp_sink.received + second_sink.received:
        assert mail.sender == "news@shop.example"
        [sender] = mail.message["From"].addresses
        assert (sender.display_name, sender.addr_spec) == ("Sam's Shop", "news@shop.example")
        assert mail.message["Reply-To"] == "help@shop.example"
    assert {mail.recipients[0] for mail in smtp_sink.received} == through_default


def test_an_international_address_goes_out_with_smtputf8(app, owner, smtp_sink, work):
    mailing = make_mailing(owner, clients=0)
    add_client_to(mailing, "тест@пример.рф", "Тест")
    [run_id] = dispatch.dispatch_due_mailings()
    work()

    [mail] = smtp_sink.received
    assert mail.recipients == ["тест@xn--e1afmkfd.xn--p1ai"]
    assert mail.message["To"] == "Тест <тест@пример.рф>"
    assert [d.status for d in deliveries(run_id)] == [DeliveryStatus.SENT]


def test_an_international_address_fails_with_a_sentence_on_a_server_without_smtputf8(app, owner, ascii_only_sink, work):
    add_server(name="Old relay", port=ascii_only_sink.port, is_default=True)
    mailing = make_mailing(owner, clients=1)
    [plain] = [client.email for client in mailing.clients]
    add_client_to(mailing, "тест@пример.рф")
    add_client_to(mailing, "ascii@пример.рф")  # a domain alone needs no SMTPUTF8: IDNA
    [run_id] = dispatch.dispatch_due_mailings()
    work()

    rows = {delivery.email: delivery for delivery in deliveries(run_id)}
    refused = rows["тест@пример.рф"]
    assert refused.status == DeliveryStatus.FAILED and refused.attempts == 1
    assert refused.last_response.startswith("Old relay does not accept international addresses")
    assert "codec" not in refused.last_response and "Error" not in refused.last_response
    assert rows["ascii@пример.рф"].status == DeliveryStatus.SENT
    assert sorted(mail.recipients[0] for mail in ascii_only_sink.received) == sorted(
        ["ascii@xn--e1afmkfd.xn--p1ai", plain]
    )
    assert reload_run(run_id).failed_count == 1
    assert [a.status for a in attempts(run_id) if a.email == "тест@пример.рф"] == [AttemptStatus.FAILURE]


def test_mail_through_a_server_with_a_dkim_key_arrives_signed_and_verifies(app, owner, smtp_sink, work):
    key = rsa_pem()
    server = add_server(
        name="Signing relay", port=smtp_sink.port, is_default=True, dkim_selector="mail", dkim_domain="shop.example"
    )
    servers.prepare_server(server, new_dkim_key=key)
    db.session.commit()
    add_identity(owner, name="Shop", email="news@shop.example")
    make_mailing(owner, clients=2)
    dispatch.dispatch_due_mailings()
    work()

    assert len(smtp_sink.received) == 2
    for mail in smtp_sink.received:
        assert mail.raw.startswith(b"DKIM-Signature:")
        assert dkim.verify(mail.raw, dnsfunc=dns_with("mail", "shop.example", public_key_record(key)))

"""DKIM: a mailing message signed with a server's key, sent to a real sink, verifies with
dkimpy against the test's public key (a DNS function stands in for the DNS: no network)."""

import hashlib
import smtplib

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailer.extensions import db
from mailer.models import Client, Message
from mailer.services import servers
from mailer.services.dkim_signing import (
    DkimKey,
    DkimKeyError,
    check_private_key,
    public_key_record,
    rsa_sign_with_openssl,
    sign,
)
from mailer.services.rendering import build_mail
from tests.factories import add_server


def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


@pytest.fixture(scope="module")
def private_key() -> str:
    return rsa_pem()


def dns_with(selector: str, domain: str, record: str):
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return record.encode("ascii") if name == f"{selector}._domainkey.{domain}.".encode("ascii") else None

    return dnsfunc


def mailing_message(owner) -> bytes:
    message = Message(owner_id=owner.id, subject="Spring sale — 20 %", body_text="Hello {{ name }},\nПривет!")
    client = Client(owner_id=owner.id, email="reader@example.com", full_name="Reader")
    db.session.add_all([message, client])
    db.session.commit()
    return build_mail(
        message, client, message_id="<mailing.1.abc@mailer.test>", sender="Alice <news@alice.example>"
    ).as_bytes()


def test_a_message_signed_through_a_server_verifies_where_it_arrives(app, owner, smtp_sink, private_key):
    server = add_server(name="Signed relay", dkim_selector="mail2026", dkim_domain="alice.example")
    servers.prepare_server(server, new_dkim_key=private_key)
    db.session.commit()
    settings = servers.settings_for(server)
    assert settings.dkim == DkimKey("mail2026", "alice.example", private_key.strip())

    signed = sign(mailing_message(owner), settings.dkim)
    with smtplib.SMTP("127.0.0.1", smtp_sink.port, timeout=10) as smtp:
        smtp.sendmail("news@alice.example", ["reader@example.com"], signed)
    [mail] = smtp_sink.wait_for(1)

    assert mail.raw.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=alice.example;")
    record = public_key_record(private_key)
    assert dkim.verify(mail.raw, dnsfunc=dns_with("mail2026", "alice.example", record))
    # The same bytes with a changed body do not verify: the check is real.
    tampered = mail.raw.replace(b"Hello Reader", b"Hello Mallory")
    assert tampered != mail.raw
    assert not dkim.verify(tampered, dnsfunc=dns_with("mail2026", "alice.example", record))


def ed25519_pem() -> str:
    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )


@pytest.mark.parametrize(
    "make_pem, message",
    [
        (lambda: "not a key", "must be an unencrypted private key in PEM form"),
        (ed25519_pem, "must be an RSA key"),
    ],
)
def test_unusable_keys_are_refused_with_a_reason(make_pem, message):
    with pytest.raises(DkimKeyError, match=message):
        check_private_key(make_pem())


def test_openssl_signs_the_same_bytes_as_dkimpys_own_rsa(private_key):
    digest = hashlib.sha256(b"canonicalised headers")
    parsed = dkim.crypto.parse_pem_private_key(
        serialization.load_pem_private_key(private_key.encode(), password=None).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    assert rsa_sign_with_openssl(digest, parsed) == dkim.crypto.RSASSA_PKCS1_v1_5_sign(digest, parsed)

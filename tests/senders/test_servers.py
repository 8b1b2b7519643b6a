"""SMTP servers: encrypted secrets, validation, the one default, which server a mailing uses,
the admin panel's forms and its connection test against real aiosmtpd sinks."""

import pytest
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from mailer.extensions import db
from mailer.models import Security, SmtpServer
from mailer.services import secrets, servers
from mailer.services.servers import ServerError
from tests.factories import add_clients, add_mailing, add_message, add_server, make_user
from tests.support import SmtpSink, free_port, login

# Secrets --------------------------------------------------------------------------------------


def test_the_password_is_stored_encrypted_and_read_back(app):
    server = add_server(password="s3cret-relay-pass")
    stored = db.session.execute(text("SELECT password_encrypted FROM smtp_servers")).scalar_one()
    assert "s3cret" not in stored
    assert servers.settings_for(server).password == "s3cret-relay-pass"
    assert "s3cret" not in repr(servers.settings_for(server))


def test_mail_secrets_key_is_used_when_set_and_a_changed_key_is_a_clear_error(app):
    app.config["MAIL_SECRETS_KEY"] = "one key for the stored secrets"
    token = secrets.encrypt("pass")
    assert secrets.decrypt(token) == "pass"
    app.config["MAIL_SECRETS_KEY"] = None  # back to SECRET_KEY: another key
    with pytest.raises(secrets.SecretError, match="was the key changed"):
        secrets.decrypt(token)


# Validation -----------------------------------------------------------------------------------


def test_rate_limits_are_checked_with_the_limits_parser():
    assert servers.normalize_rate_limit(" 50 per second;10000  per hour ") == "50 per second; 10000 per hour"
    assert servers.normalize_rate_limit("") is None
    for bad in ("fast", "50 per fortnight", "0 per second"):
        with pytest.raises(ServerError) as caught:
            servers.normalize_rate_limit(bad)
        assert caught.value.field == "rate_limit"


def test_marking_a_server_default_unmarks_the_other(app):
    first = add_server(name="First", is_default=True)
    second = SmtpServer(name="Second", host="127.0.0.1", port=25, security=Security.NONE, is_default=True)
    db.session.add(second)
    servers.prepare_server(second)
    db.session.commit()
    assert db.session.scalars(select(SmtpServer.name).where(SmtpServer.is_default.is_(True))).all() == ["Second"]
    db.session.refresh(first)
    assert not first.is_default


def test_the_database_refuses_two_defaults(app):
    add_server(name="First", is_default=True)
    db.session.add(SmtpServer(name="Second", host="h", port=25, security=Security.NONE, is_default=True))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


# Which server ---------------------------------------------------------------------------------


@pytest.fixture
def mailing(owner):
    return add_mailing(owner, add_message(owner), add_clients(owner, 1))


def test_a_mailing_uses_its_server_then_the_default_then_the_built_in(app, mailing):
    app.config.update(MAIL_RATE_LIMIT="50 per second; 10000 per hour", MAIL_MAX_CONNECTIONS=2)
    builtin = servers.server_for_mailing(mailing)
    assert (builtin.key, builtin.host, builtin.rate_limits, builtin.max_connections) == (
        "builtin",
        "127.0.0.1",
        "50 per second; 10000 per hour",
        2,
    )
    assert [str(item) for item in builtin.rate_limit_items] == ["50 per 1 second", "10000 per 1 hour"]

    default = add_server(name="Default relay", host="default.example", is_default=True, rate_limit="10 per second")
    assert servers.server_for_mailing(mailing).key == f"server-{default.id}"

    own = add_server(name="Own relay", host="own.example", username="u", password="p", max_connections=3)
    mailing.smtp_server_id = own.id
    db.session.commit()
    chosen = servers.server_for_mailing(mailing)
    assert (chosen.key, chosen.host, chosen.username, chosen.password, chosen.max_connections, chosen.rate_limits) == (
        f"server-{own.id}",
        "own.example",
        "u",
        "p",
        3,
        "",
    )

    db.session.delete(own)
    db.session.commit()
    db.session.expire_all()
    assert mailing.smtp_server_id is None  # ON DELETE SET NULL
    assert servers.server_for_mailing(mailing).key == f"server-{default.id}"


def test_a_bad_mail_rate_limit_setting_names_the_setting(app, mailing, as_admin):
    app.config["MAIL_RATE_LIMIT"] = "lots"
    with pytest.raises(ServerError) as caught:
        servers.server_for_mailing(mailing)
    assert caught.value.field == "MAIL_RATE_LIMIT"
    page = as_admin.get("/admin/smtp-servers/")
    assert page.status_code == 200
    assert "The MAIL_RATE_LIMIT setting is wrong: “lots” is not a rate limit." in page.get_data(as_text=True)


# Admin panel ----------------------------------------------------------------------------------


def server_form(**fields) -> dict:
    data = {
        "name": "Relay two",
        "host": "smtp.example.com",
        "port": "587",
        "security": "starttls",
        "username": "mailer",
        "new_password": "relay-password-1",
        "rate_limit": "50 per second; 10000 per hour",
        "max_connections": "2",
        "dkim_selector": "",
        "dkim_domain": "",
        "new_dkim_private_key": "",
    }
    data.update(fields)
    return {name: value for name, value in data.items() if value is not None}


def test_an_admin_adds_a_server_and_its_password_is_never_shown(app, as_admin):
    response = as_admin.post("/admin/smtp-servers/new/", data=server_form(is_default="y"))
    assert response.status_code == 302
    server = db.session.scalars(select(SmtpServer)).one()
    assert (server.name, server.port, server.security, server.rate_limit, server.max_connections) == (
        "Relay two",
        587,
        Security.STARTTLS,
        "50 per second; 10000 per hour",
        2,
    )
    assert server.is_default
    assert secrets.decrypt(server.password_encrypted) == "relay-password-1"
    for page in (
        "/admin/smtp-servers/",
        f"/admin/smtp-servers/edit/?id={server.id}",
        f"/admin/smtp-servers/details/?id={server.id}",
    ):
        html = as_admin.get(page).get_data(as_text=True)
        assert "relay-password-1" not in html and server.password_encrypted not in html, page


def test_an_empty_password_keeps_the_stored_one_and_the_tick_removes_it(app, as_admin):
    server = add_server(password="kept-password")
    as_admin.post(f"/admin/smtp-servers/edit/?id={server.id}", data=server_form(name="Relay", new_password=""))
    db.session.expire_all()
    assert secrets.decrypt(server.password_encrypted) == "kept-password"
    as_admin.post(
        f"/admin/smtp-servers/edit/?id={server.id}", data=server_form(name="Relay", new_password="", clear_password="y")
    )
    db.session.expire_all()
    assert server.password_encrypted is None


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"rate_limit": "as fast as possible"}, "is not a rate limit"),
        ({"port": "70000"}, "The port is a number from 1 to 65535"),
        ({"dkim_selector": "mail"}, "DKIM needs a selector, a domain and a private key together"),
        (
            {"dkim_selector": "mail", "dkim_domain": "example.com", "new_dkim_private_key": "junk"},
            "must be an unencrypted private key in PEM form",
        ),
    ],
)
def test_bad_settings_are_refused_with_a_message_and_nothing_is_saved(app, as_admin, fields, message):
    response = as_admin.post("/admin/smtp-servers/new/", data=server_form(**fields), follow_redirects=True)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(SmtpServer.id)) is None


@pytest.mark.parametrize("role", [None, "manager"])
def test_only_admins_reach_servers_and_their_test(app, client, role):
    server = add_server()
    login(client, make_user("someone@example.com", role=role).email)
    assert client.get("/admin/smtp-servers/").status_code == 404
    assert client.get(f"/admin/smtp-servers/check/{server.id}").status_code == 404
    assert client.post(f"/admin/smtp-servers/check/{server.id}").status_code == 404
    assert client.post("/admin/smtp-servers/check/builtin").status_code == 404


# Connection test ------------------------------------------------------------------------------


def check(as_admin, server) -> str:
    response = as_admin.post(f"/admin/smtp-servers/check/{server.id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_connection_test_reports_greeting_encryption_and_login_in_sentences(app, as_admin, smtp_sink):
    page = check(as_admin, add_server(port=smtp_sink.port))
    assert "The server is ready to send." in page
    assert f"Connected to 127.0.0.1:{smtp_sink.port}. The server greeted: “220 " in page
    assert "The connection is not encrypted (security “none”)" in page
    assert "The server accepts international addresses (SMTPUTF8)." in page
    assert "No login is set: the server is used without authentication." in page
    assert smtp_sink.received == []


class Accounts:
    """aiosmtpd authenticator: one user name and password."""

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"mailer" and auth_data.password == b"right-password"
        return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def auth_sink():
    sink = SmtpSink(authenticator=Accounts(), auth_require_tls=False, enable_SMTPUTF8=False)
    yield sink
    sink.stop()


def test_the_connection_test_logs_in_and_reports_a_refused_login(app, as_admin, auth_sink):
    good = add_server(name="Good login", port=auth_sink.port, username="mailer", password="right-password")
    page = check(as_admin, good)
    assert "Logged in as mailer." in page and "The server is ready to send." in page
    assert "does not offer SMTPUTF8: addresses with non-Latin characters before the @" in page

    bad = add_server(name="Bad login", port=auth_sink.port, username="mailer", password="wrong")
    page = check(as_admin, bad)
    assert "The server refused the login of mailer: “535 " in page
    assert "The server cannot be used as it is set up." in page


def test_starttls_that_the_server_does_not_offer_is_reported(app, as_admin, smtp_sink):
    page = check(as_admin, add_server(port=smtp_sink.port, security="starttls"))
    assert "The server does not offer STARTTLS, so the connection cannot be encrypted" in page


def test_an_unreachable_port_gives_a_clear_sentence(app, as_admin):
    port = free_port()  # nothing listens there
    page = check(as_admin, add_server(port=port))
    assert f"Nothing answers at 127.0.0.1:{port} (connection refused): check the host and the port" in page
    assert "Errno" not in page and "Traceback" not in page


@pytest.fixture(scope="module")
def starttls_sink(tmp_path_factory):
    """A sink offering STARTTLS with a self-signed certificate, as a badly set up relay would."""
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    sink = SmtpSink(tls_context=context)
    yield sink
    sink.stop()


def test_a_certificate_that_cannot_be_trusted_is_reported(app, as_admin, starttls_sink):
    page = check(as_admin, add_server(port=starttls_sink.port, security="starttls"))
    assert "The server&#39;s TLS certificate cannot be trusted: self-signed certificate." in page
    assert "The server cannot be used as it is set up." in page


def test_the_built_in_server_can_be_tested_too(app, as_admin, smtp_sink):
    assert "Test its connection" in as_admin.get("/admin/smtp-servers/").get_data(as_text=True)
    response = as_admin.post("/admin/smtp-servers/check/builtin")
    page = response.get_data(as_text=True)
    assert "Test the connection to Built-in server (MAIL_* settings)" in page
    assert f"Connected to 127.0.0.1:{smtp_sink.port}." in page and "The server is ready to send." in page

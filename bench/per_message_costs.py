"""What the outgoing helpers add to each message: the header and envelope forms of addresses,
and a DKIM signature (dkimpy, RSA 2048, relaxed/relaxed) of a typical mailing message.

    .venv/bin/python bench/per_message_costs.py [--messages 2000]

Builds one text + HTML mailing message (about 2.6 kB) with the real renderer, then times each
step over many messages on one core and prints microseconds per message. Nothing touches the
network, a database or Redis (an in-memory SQLite app is enough for the renderer).
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from mailer import create_app  # noqa: E402
from mailer.models import Client, Message  # noqa: E402
from mailer.services.addresses import envelope_address, header_address  # noqa: E402
from mailer.services.dkim_signing import DkimKey, sign  # noqa: E402
from mailer.services.rendering import build_mail  # noqa: E402

HTML = "<p>Hello <b>{{ name }}</b>,</p>" + "<p>The spring catalogue is out: new colours, new sizes.</p>" * 20


def per_message(label: str, count: int, step) -> None:
    started = time.perf_counter()
    for number in range(count):
        step(number)
    elapsed = time.perf_counter() - started
    print(f"{label:<48} {elapsed / count * 1e6:10.1f} µs per message")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    count = parser.parse_args().messages

    app = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://", EXTERNAL_URL="https://mailer.example.com")
    with app.app_context():
        message = Message(
            id=1,
            owner_id=1,
            subject="Spring catalogue for {{ name }}",
            body_text="Hello {{ name }},\n\nThe spring catalogue is out.",
            body_html=HTML,
        )
        client = Client(id=1, owner_id=1, email="reader@example.com", full_name="Reader Example")
        data = build_mail(
            message, client, message_id="<mailing.1.0@mailer.example.com>", sender="Shop <news@shop.example>"
        ).as_bytes()
        pem = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            .decode()
        )
        key = DkimKey("mail", "shop.example", pem)
        print(f"message of {len(data)} bytes, {count} messages per step")
        per_message(
            "header_address (ASCII name and address)",
            count * 10,
            lambda n: header_address("Reader Example", f"reader{n}@example.com"),
        )
        per_message(
            "header_address (Cyrillic name, IDNA domain)",
            count * 10,
            lambda n: header_address("Читатель", f"reader{n}@пример.рф"),
        )
        per_message("envelope_address (ASCII)", count * 10, lambda n: envelope_address(f"reader{n}@example.com"))
        per_message("envelope_address (IDNA domain)", count * 10, lambda n: envelope_address(f"reader{n}@пример.рф"))
        per_message(
            "build_mail (for comparison)",
            count,
            lambda n: build_mail(
                message, client, message_id=f"<mailing.{n}.0@mailer.example.com>", sender="Shop <news@shop.example>"
            ).as_bytes(),
        )
        per_message("DKIM sign (RSA 2048, relaxed/relaxed)", count, lambda n: sign(data, key))


if __name__ == "__main__":
    main()

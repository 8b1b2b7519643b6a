"""International e-mail addresses on the wire.

A domain always travels in its ASCII (IDNA) form: `пример.рф` becomes `xn--e1afmkfd.xn--p1ai`,
which every server accepts. A local part (before the @) with other characters than ASCII
cannot be converted: it needs the server's SMTPUTF8 extension (RFC 6531), and the headers that
carry it are then UTF-8 (RFC 6532). A server without SMTPUTF8 cannot take such an address at
all; `smtputf8_refusal` says so in a sentence for the attempt log.
"""

from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr
from functools import lru_cache

import idna
from flask_babel import gettext as _

# What the SMTP command needs when an envelope address has a non-ASCII local part.
SMTPUTF8 = "SMTPUTF8"


class AddressError(ValueError):
    """An address that cannot be written on the wire (e.g. a domain that is not valid IDNA)."""


@dataclass(frozen=True)
class EnvelopeAddress:
    """An address for MAIL FROM / RCPT TO."""

    address: str
    needs_smtputf8: bool


def split_address(address: str) -> tuple[str, str]:
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise AddressError(_("“%(address)s” is not an e-mail address.", address=address))
    return local, domain


@lru_cache(maxsize=4096)
def ascii_domain(domain: str) -> str:
    """The domain as DNS and SMTP know it: IDNA (UTS 46), lower-case. Cached: the encoding costs
    about 0.1 ms, and a list's recipients share few domains."""
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise AddressError(
            _("The domain “%(domain)s” is not a valid international domain name.", domain=domain)
        ) from None


def envelope_address(address: str) -> EnvelopeAddress:
    """The address with its domain in IDNA, and whether its local part needs SMTPUTF8."""
    local, domain = split_address(address)
    return EnvelopeAddress(f"{local}@{ascii_domain(domain)}", needs_smtputf8=not local.isascii())


def needs_smtputf8(*addresses: str) -> bool:
    return any(envelope_address(address).needs_smtputf8 for address in addresses)


def header_address(name: str, address: str) -> str:
    """The address for a From / To / Reply-To header.

    Plain ASCII whenever the local part is ASCII: IDNA domain, display name as an RFC 2047
    encoded word if needed. A non-ASCII local part stays UTF-8 as it is (RFC 6532): such a
    header may only go out in an SMTPUTF8 transaction.
    """
    name = " ".join((name or "").split())
    envelope = envelope_address(address)
    if envelope.needs_smtputf8:
        local, domain = split_address(address)
        if not name:
            return f"{local}@{domain}"
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{local}@{domain}>'
    if not name:
        return envelope.address
    if name.isascii():
        return formataddr((name, envelope.address))
    return f"{Header(name, 'utf-8').encode()} <{envelope.address}>"


def smtputf8_refusal(address: str, server_name: str = "The SMTP server") -> str:
    """Why a message to (or from) `address` cannot go through a server without SMTPUTF8."""
    return (
        f"{server_name} does not accept international addresses (it does not offer SMTPUTF8), "
        f"and {address} has characters other than Latin letters, digits and punctuation "
        f"before the @: it cannot be sent through this server."
    )


def smtputf8_problem(server_offers_smtputf8: bool, *addresses: str, server_name: str = "The SMTP server") -> str | None:
    """None when the addresses can go through the server; otherwise the sentence for the log.

    `server_offers_smtputf8` is what the server said to EHLO (smtplib: `has_extn("smtputf8")`).
    """
    if server_offers_smtputf8:
        return None
    for address in addresses:
        if envelope_address(address).needs_smtputf8:
            return smtputf8_refusal(address, server_name)
    return None


def mail_options(*addresses: str) -> list[str]:
    """The MAIL FROM options a transaction with these envelope addresses needs."""
    return [SMTPUTF8] if needs_smtputf8(*addresses) else []

"""DKIM signatures (RFC 6376) with dkimpy, for messages that leave through a server that
carries a selector, a domain and a private key."""

import base64
from dataclasses import dataclass
from functools import lru_cache

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from flask_babel import gettext as _

# Signed headers: those a receiver shows or acts on. The unsubscribe headers are signed so that
# nobody on the way can point the one-click unsubscribe elsewhere.
SIGNED_HEADERS = (
    b"from",
    b"reply-to",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
)


class DkimKeyError(ValueError):
    """A private key that cannot sign."""


@dataclass(frozen=True)
class DkimKey:
    selector: str
    domain: str
    private_key: str = ""  # PEM; kept out of repr so that it never lands in a log

    def __repr__(self) -> str:
        return f"DkimKey(selector={self.selector!r}, domain={self.domain!r})"


def check_private_key(pem: str) -> None:
    """Raise DkimKeyError unless `pem` is an unencrypted RSA key of 1024 bits or more (2048 is usual;
    Ed25519 signatures are not yet verified by every receiver, so RSA is what works everywhere)."""
    try:
        key = serialization.load_pem_private_key(pem.strip().encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeError):
        raise DkimKeyError(
            _("The DKIM key must be an unencrypted private key in PEM form (-----BEGIN PRIVATE KEY----- …).")
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimKeyError(_("The DKIM key must be an RSA key (openssl genrsa 2048)."))
    if key.key_size < 1024:
        raise DkimKeyError(_("An RSA key for DKIM needs at least 1024 bits; 2048 is usual."))


def public_key_record(pem: str) -> str:
    """The TXT record to publish at <selector>._domainkey.<domain>."""
    key = serialization.load_pem_private_key(pem.strip().encode("ascii"), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode('ascii')}"


@lru_cache(maxsize=16)
def _openssl_key(p: int, q: int, d: int, dmp1: int, dmq1: int, iqmp: int, e: int, n: int) -> rsa.RSAPrivateKey:
    return rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, rsa.RSAPublicNumbers(e, n)).private_key()


OPENSSL_DIGESTS = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}


def rsa_sign_with_openssl(digest, private_key: dict) -> bytes:
    """dkimpy's RSASSA-PKCS1-v1_5 signature of a digest, computed by OpenSSL.

    dkimpy computes it in pure Python, about 17 ms per message for a 2048-bit key, which would
    make signing cost more than everything else the sending engine does per message; OpenSSL
    takes about a millisecond. PKCS#1 v1.5 signatures are deterministic, so the bytes are the
    same (a test compares them with dkimpy's own).
    """
    key = _openssl_key(
        private_key["prime1"],
        private_key["prime2"],
        private_key["privateExponent"],
        private_key["exponent1"],
        private_key["exponent2"],
        private_key["coefficient"],
        private_key["publicExponent"],
        private_key["modulus"],
    )
    algorithm = OPENSSL_DIGESTS[digest.name.lower()]
    return key.sign(digest.digest(), padding.PKCS1v15(), utils.Prehashed(algorithm))


# dkimpy calls this name of its own module for every RSA signature.
dkim.RSASSA_PKCS1_v1_5_sign = rsa_sign_with_openssl


def sign(message: bytes, key: DkimKey) -> bytes:
    """The message with a DKIM-Signature header in front (relaxed/relaxed canonicalisation)."""
    try:
        signature = dkim.sign(
            message,
            key.selector.encode("ascii"),
            key.domain.encode("ascii"),
            key.private_key.strip().encode("ascii"),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
        )
    except dkim.DKIMException as error:
        raise DkimKeyError(_("The message could not be signed with DKIM: %(error)s", error=error)) from None
    return signature + message

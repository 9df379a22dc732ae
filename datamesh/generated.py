"""Values the engine makes for Secrets, once, and keeps: random tokens, a password file of
PBKDF2 hashes, and a self-signed certificate.

Rendering stays pure: a role renders these keys empty and names them in annotations;
`diff.fill_generated` calls here the first time and keeps the live value afterwards, so a
second `up` writes nothing. A password file is remade only when a password it hashes changed.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import secrets

from datamesh.kube import cache_home, keep

PBKDF2_ITERATIONS = 10_000  # Trino refuses fewer than 1000; it caches a checked login, so this is paid once per user
CERT_DAYS = 3650


def token() -> str:
    return secrets.token_urlsafe(24)


def pbkdf2_line(user: str, password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """`user:iterations:salt:hash`, the PBKDF2 form of Trino's file password authenticator: lower-case
    hex, HMAC-SHA1 (what Trino 476's EncryptionUtil verifies with; Presto's moved to SHA-256, Trino's
    did not), the hash's length setting the key length."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, iterations, dklen=32)
    return f"{user}:{iterations}:{salt.hex()}:{digest.hex()}"


def password_file(passwords: dict[str, str]) -> str:
    return "".join(pbkdf2_line(user, password) + "\n" for user, password in passwords.items())


def password_file_matches(text: str, passwords: dict[str, str]) -> bool:
    """True when `text` holds exactly these users, each line hashing that user's password."""
    seen = {}
    for line in text.splitlines():
        user, _, hashed = line.partition(":")
        seen[user] = hashed
    if set(seen) != set(passwords):
        return False
    for user, hashed in seen.items():
        try:
            iterations, salt, digest = hashed.split(":")
            again = pbkdf2_line(user, passwords[user], bytes.fromhex(salt), int(iterations))
        except ValueError:
            return False
        if not hmac.compare_digest(again.rsplit(":", 1)[1], digest):
            return False
    return True


def self_signed(names: list[str]) -> tuple[str, str]:
    """(private key + certificate, certificate) as PEM: an ECDSA P-256 certificate for `names`
    (DNS names or IP addresses), valid CERT_DAYS days and its own CA, with the key identifiers
    that strict verifiers (OpenSSL's X509_STRICT, Python 3.13's default) want."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alternatives = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem + cert_pem, cert_pem


def certificate_covers(cert_pem: str, names: list[str]) -> bool:
    """True when the PEM certificate names every one of `names` and is valid for another 30 days."""
    facts = certificate_facts(cert_pem)
    if facts is None:
        return False
    have, not_after = facts
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    return set(names) <= have and not_after > soon.timestamp()


def certificate_facts(cert_pem: str) -> tuple[set[str], float] | None:
    """A certificate's DNS and IP names and its expiry (a POSIX time); None when it cannot be read.
    Kept in the cache by the certificate's SHA-256, so a no-op `up` does not load cryptography's
    X.509 code (about 45 ms) to learn again what one certificate says."""
    kept = cache_home() / "certificates" / f"{hashlib.sha256(cert_pem.encode()).hexdigest()}.json"
    try:
        data = json.loads(kept.read_text())
        return set(data["names"]), float(data["not_after"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    have = {str(v) for v in san.get_values_for_type(x509.DNSName)} | \
        {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    not_after = cert.not_valid_after_utc.timestamp()
    keep(kept, {"names": sorted(have), "not_after": not_after})
    return have, not_after

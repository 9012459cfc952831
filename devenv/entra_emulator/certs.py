"""Key material: a private CA, the HTTPS server certificate it signs, and the token signing key.

Everything lives in the state directory so a restarted emulator keeps the same CA (clients that
trust it keep working) and the same signing key (relying parties that cached the JWKS, such as
Keycloak, keep validating tokens).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"
SIGNING_KEY = "signing-key.pem"
SIGNING_CERT = "signing-cert.pem"

_RENEW_BEFORE = dt.timedelta(days=30)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    return key


def _valid(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - _RENEW_BEFORE > _now()


def _ensure_ca(state_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = state_dir / CA_CERT, state_dir / CA_KEY
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = _load_key(key_path)
        if _valid(cert) and isinstance(key, ec.EllipticCurvePrivateKey):
            return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "apsis-sso test"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Entra emulator test CA"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    # A CA change invalidates any server certificate signed by the old one.
    (state_dir / SERVER_CERT).unlink(missing_ok=True)
    return cert, key


def _san_names(hostnames: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _server_cert_covers(cert: x509.Certificate, ca: x509.Certificate, hostnames: list[str]) -> bool:
    if cert.issuer != ca.subject or not _valid(cert):
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = {str(v) for v in san.get_values_for_type(x509.DNSName)}
    present |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    return all(str(ipaddress.ip_address(h)) in present if _is_ip(h) else h in present for h in hostnames)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _ensure_server_cert(
    state_dir: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, hostnames: list[str]
) -> None:
    cert_path, key_path = state_dir / SERVER_CERT, state_dir / SERVER_KEY
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if _server_cert_covers(cert, ca, hostnames):
            return
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=397))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_san_names(hostnames)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class SigningKey:
    """The RSA key that signs every token, with the self-signed certificate JWKS publishes as x5c."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def kid(self) -> str:
        """Entra uses the certificate's SHA-1 thumbprint (base64url) as both kid and x5t."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()

    @property
    def private_pem(self) -> bytes:
        return _pem_key(self.private_key)

    def jwk(self) -> dict[str, object]:
        numbers = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64uint(numbers.n),
            "e": _b64uint(numbers.e),
            "x5c": [base64.b64encode(der).decode()],
        }


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _ensure_signing_key(state_dir: Path) -> SigningKey:
    key_path, cert_path = state_dir / SIGNING_KEY, state_dir / SIGNING_CERT
    if key_path.exists() and cert_path.exists():
        key = _load_key(key_path)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if isinstance(key, rsa.RSAPrivateKey) and _valid(cert):
            return SigningKey(key, cert)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.accesscontrol.windows.net")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1825))
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return SigningKey(key, cert)


@dataclass(frozen=True)
class KeyMaterial:
    ca_bundle: Path
    server_cert: Path
    server_key: Path
    signing: SigningKey


def ensure_key_material(state_dir: Path, hostnames: list[str]) -> KeyMaterial:
    """Create (or reuse) the CA, a server certificate covering ``hostnames`` and the signing key."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ensure_ca(state_dir)
    _ensure_server_cert(state_dir, ca, ca_key, hostnames)
    return KeyMaterial(
        ca_bundle=state_dir / CA_CERT,
        server_cert=state_dir / SERVER_CERT,
        server_key=state_dir / SERVER_KEY,
        signing=_ensure_signing_key(state_dir),
    )

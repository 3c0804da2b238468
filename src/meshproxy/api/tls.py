"""The API's TLS certificate: the configured one, or a self-signed one generated into the
data directory on first start and reused afterwards (regenerated when it expires soon or
does not cover the listen host)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshproxy.config import Settings

CERT_NAME = "api-cert.pem"
KEY_NAME = "api-key.pem"
VALID_DAYS = 3650
RENEW_BEFORE = dt.timedelta(days=30)
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def certificate_names(listen: str) -> list[str]:
    """The names a generated certificate covers: loopback, the listen host, this host."""
    names = ["localhost", "127.0.0.1", "::1"]
    extra = [socket.gethostname()] if listen in _WILDCARD_HOSTS else [listen]
    for name in extra:
        if name and name not in names:
            names.append(name)
    return names


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def generate_self_signed(cert_path: Path, key_path: Path, names: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key is readable by its owner only, from the moment it exists; the certificate is
    # public, but writable by its owner only. Exact modes, whatever the umask.
    _write(key_path, key_bytes, 0o600)
    _write(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), mode)  # an existing file keeps its mode through O_CREAT
        handle.write(data)


def _usable(cert_path: Path, key_path: Path, names: list[str]) -> bool:
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    if certificate.not_valid_after_utc - RENEW_BEFORE < dt.datetime.now(dt.UTC):
        return False
    covered = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    covered |= set(san.get_values_for_type(x509.DNSName))
    wanted = {str(ipaddress.ip_address(n)) if _is_ip(n) else n for n in names}
    return wanted <= covered


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def ensure_certificate(settings: Settings) -> tuple[Path, Path]:
    """(certificate, key) paths for the HTTPS listener."""
    if settings.api.tls_cert is not None and settings.api.tls_key is not None:
        return settings.api.tls_cert, settings.api.tls_key
    directory = settings.data_dir / "tls"
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    names = certificate_names(settings.api.listen)
    if not _usable(cert_path, key_path, names):
        generate_self_signed(cert_path, key_path, names)
    return cert_path, key_path

"""The API's certificate: generated on first start, reused afterwards, or the configured one."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from meshproxy.api.tls import ensure_certificate, generate_self_signed

from .harness import StartServer, settings_for


def _names(cert_path: Path) -> set[str]:
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} | set(
        san.get_values_for_type(x509.DNSName)
    )


def test_generated_once_and_reused(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data", api={"listen": "127.0.0.5"})
    cert, key = ensure_certificate(settings)
    assert cert.parent == settings.data_dir / "tls"
    assert {"localhost", "127.0.0.1", "::1", "127.0.0.5"} <= _names(cert)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = cert.read_bytes(), key.read_bytes()
    assert ensure_certificate(settings) == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == first


def test_regenerated_when_the_listen_host_is_not_covered(tmp_path: Path) -> None:
    cert, _ = ensure_certificate(settings_for(tmp_path / "data"))
    before = cert.read_bytes()
    cert2, _ = ensure_certificate(settings_for(tmp_path / "data", api={"listen": "::1"}))
    assert cert2.read_bytes() == before  # ::1 is always covered
    cert3, _ = ensure_certificate(settings_for(tmp_path / "data", api={"listen": "api.internal"}))
    assert cert3.read_bytes() != before
    assert "api.internal" in _names(cert3)


def test_a_configured_certificate_is_used_as_given(
    tmp_path: Path, start_server: StartServer
) -> None:
    cert, key = tmp_path / "mine.pem", tmp_path / "mine.key"
    generate_self_signed(cert, key, ["127.0.0.1", "mine.test"])
    server = start_server(api={"tls_cert": str(cert), "tls_key": str(key)})
    assert not (server.settings.data_dir / "tls").exists()
    context = ssl.create_default_context(cafile=str(cert))
    response = httpx.get(f"{server.base}/api/ips/", verify=context)
    assert response.status_code == 401
    # The generated certificate of another server does not verify this one.
    other = tmp_path / "other.pem"
    generate_self_signed(other, tmp_path / "other.key", ["127.0.0.1"])
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base}/api/ips/", verify=ssl.create_default_context(cafile=str(other)))

"""`shoal run`'s transport switches: TLS, a Unix socket, HTTP/2 (h2 and h2c).

Each test serves tests/apps/transport.py with the real `shoal run` and talks
to it with httpx (HTTP/2 through the `h2` package): HTTPS verified against a
self-signed certificate made here, a Unix socket through httpx's `uds`
transport, HTTP/2 negotiated by ALPN over TLS and by prior knowledge in clear.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoal.cli import main
from tests.servers import BIN, ROOT, running_server, stop

TARGET = "tests.apps.transport:app"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key (PEM files)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


def _check_app(client: httpx.Client, base: str, version: str, scheme: str) -> None:
    """The app answers a GET, a large POST and a stream over `version`, seeing `scheme`."""
    response = client.get(f"{base}/whoami")
    assert response.status_code == 200
    assert response.http_version == version
    seen = response.json()
    assert seen["scheme"] == scheme
    assert seen["http_version"] == version.removeprefix("HTTP/")
    # larger than HTTP/2's initial window (64 KiB): flow control must move
    response = client.post(f"{base}/echo", content=b"x" * 200_000)
    assert (response.http_version, response.json()) == (version, {"size": 200_000})
    with client.stream("GET", f"{base}/stream") as streamed:
        assert streamed.http_version == version
        body = b"".join(streamed.iter_bytes())
    assert body == b"".join(b"chunk %d\n" % i for i in range(10))


def test_https_with_http1_and_http2_by_alpn(certificate: tuple[Path, Path]) -> None:
    certfile, keyfile = certificate
    flags = ["--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile)]
    with running_server("granian-rsgi", TARGET, flags) as server:
        base = server.url.replace("http://", "https://")
        with httpx.Client(verify=ssl.create_default_context(cafile=certfile)) as client:
            _check_app(client, base, "HTTP/1.1", "https")
            # by name as well as by address: the certificate names both
            localhost = base.replace("127.0.0.1", "localhost")
            assert client.get(f"{localhost}/whoami").status_code == 200
        context = ssl.create_default_context(cafile=certfile)
        with httpx.Client(verify=context, http1=True, http2=True) as client:
            _check_app(client, base, "HTTP/2", "https")
        # a client that does not trust the certificate refuses the connection
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{base}/whoami")
        # plain HTTP on the TLS port gets no answer from the app
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{server.url}/whoami", timeout=5)


def test_h2c_by_prior_knowledge_in_clear() -> None:
    with running_server("granian-rsgi", TARGET, ["--max-header-size", "8192"]) as server:
        with httpx.Client(http1=False, http2=True) as client:
            _check_app(client, server.url, "HTTP/2", "http")
            # the header limit holds for HTTP/2 too: 431, and the connection serves on
            url = f"{server.url}/whoami"
            assert client.get(url, headers={"x-big": "a" * 4_000}).status_code == 200
            refused = client.get(url, headers={"x-big": "a" * 20_000})
            assert (refused.status_code, refused.http_version) == (431, "HTTP/2")
            assert client.get(url).status_code == 200
        with httpx.Client() as client:  # and HTTP/1.1 on the same port (--http auto)
            _check_app(client, server.url, "HTTP/1.1", "http")


def test_http_switch_restricts_the_versions() -> None:
    with running_server("granian-rsgi", TARGET, ["--http", "1"]) as server:
        assert httpx.get(f"{server.url}/whoami").http_version == "HTTP/1.1"
        with httpx.Client(http1=False, http2=True) as client, pytest.raises(httpx.HTTPError):
            client.get(f"{server.url}/whoami", timeout=5)
    with running_server("granian-rsgi", TARGET, ["--http", "2"]) as server:
        with httpx.Client(http1=False, http2=True) as client:
            assert client.get(f"{server.url}/whoami").http_version == "HTTP/2"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{server.url}/whoami", timeout=5)


@contextmanager
def _serving_on(path: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """`shoal run` on the Unix socket `path`, once it accepts connections."""
    process = subprocess.Popen(
        [str(BIN / "shoal"), "run", TARGET, "--uds", str(path), *extra],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, "shoal run exited before listening"
            assert time.monotonic() < deadline, "nothing listened on the socket"
            with socket.socket(socket.AF_UNIX) as probe:
                if probe.connect_ex(str(path)) == 0:
                    break
            time.sleep(0.05)
        yield process
    finally:
        stop(process)


def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "shoal.sock"
    with _serving_on(path, "--uds-permissions", "660"):
        assert path.stat().st_mode & 0o777 == 0o660
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport) as client:
            _check_app(client, "http://localhost", "HTTP/1.1", "http")
            assert client.get("http://localhost/whoami").json()["client"] is None
        # a second server on the same live socket is refused, in one line
        taken = subprocess.run(
            [str(BIN / "shoal"), "run", TARGET, "--uds", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert taken.returncode == 2
        assert "a server already listens on" in taken.stderr
        assert "Traceback" not in taken.stderr
    assert not path.exists()  # removed at exit
    # a socket left behind by a dead server is replaced
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))
    uds = httpx.HTTPTransport(uds=str(path))
    with _serving_on(path), httpx.Client(transport=uds) as client:
        assert client.get("http://localhost/whoami").status_code == 200


def test_bad_transport_switches_are_one_line(
    tmp_path: Path, certificate: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    certfile, keyfile = certificate
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    other_key = tmp_path / "other.pem"
    other_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    missing = tmp_path / "no.pem"
    plain_file = tmp_path / "plain"
    plain_file.write_text("")
    cases = [
        (["--ssl-certfile", str(certfile)], "go together"),
        (["--ssl-keyfile", str(keyfile)], "go together"),
        (["--ssl-certfile", str(missing), "--ssl-keyfile", str(keyfile)], "no such file"),
        (["--ssl-certfile", str(garbage), "--ssl-keyfile", str(keyfile)], "cannot load"),
        (["--ssl-certfile", str(certfile), "--ssl-keyfile", str(other_key)], "cannot load"),
        (["--uds", str(tmp_path / "missing" / "s.sock")], "no such folder"),
        (["--uds", str(plain_file)], "is not a socket"),
        (["--uds-permissions", "660"], "needs --uds"),
    ]
    for flags, message in cases:
        assert main(["run", TARGET, *flags]) == 2, flags
        error = capsys.readouterr().err
        assert message in error, (flags, error)
        assert error.count("\n") == 1, error
    assert plain_file.exists()  # never removed: it is not a socket
    with pytest.raises(SystemExit):
        main(["run", TARGET, "--uds-permissions", "999"])
    with pytest.raises(SystemExit):
        main(["run", TARGET, "--http", "3"])

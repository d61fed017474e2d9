"""Fixtures: sample_app.py served by the runtime in a subprocess, with the settings a test needs."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LiveServer, process_env

HERE = Path(__file__).resolve().parent
# Short deadlines keep the suite quick; the code paths are the ones the defaults take.
QUICK = {"SAMPLE_APP_PORT": "0", "SAMPLE_APP_SHUTDOWN_TIMEOUT": "2", "SAMPLE_APP_PAUSE": "0.3"}


def sample_server(log_path: Path, **settings: object) -> LiveServer:
    """sample_app.py under `python serve_sample.py`; settings by field name, e.g. body_timeout=1."""
    variables = dict(QUICK)
    variables.update((f"SAMPLE_APP_{name.upper()}", str(value)) for name, value in settings.items())
    command = [sys.executable, str(HERE / "serve_sample.py")]
    return LiveServer(command, process_env(**variables), log_path, cwd=HERE).start()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One sample server shared by the tests that only talk to it (and leave it as it was)."""
    live = sample_server(tmp_path_factory.mktemp("sample") / "server.log")
    yield live
    live.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 and its key, made by openssl."""
    if not shutil.which("openssl"):
        pytest.skip("the TLS tests make a certificate with openssl, which is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def start_server(tmp_path: Path):
    """start_server(**settings): a sample server of this test's own, stopped at its end."""
    servers: list[LiveServer] = []

    def start(**settings: object) -> LiveServer:
        servers.append(sample_server(tmp_path / f"server-{len(servers)}.log", **settings))
        return servers[-1]

    yield start
    for live in servers:
        live.stop()

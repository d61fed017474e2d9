"""The runtime's gunicorn worker: connections are served as `python -m` serves them."""

import json
import signal
import socket
import ssl
import sys
import urllib.request

import pytest
import websocket
from conftest import LiveServer, process_env

from .conftest import HERE, QUICK
from .support import exchange, statuses, wait_until

pytest.importorskip("gunicorn", reason="gunicorn tests need: pip install 'gunicorn[gevent]'")


def start_gunicorn(log_path, workers: int, *options: str) -> LiveServer:
    """sample_app.py under gunicorn, on the runtime's worker class."""
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers)]
    command += ["--bind", "127.0.0.1:0", "--worker-class", "sample_app.SampleWorker"]
    command += ["--access-logfile", "-", "--graceful-timeout", "5", *options, "sample_app:app"]
    return LiveServer(command, process_env(**QUICK), log_path, cwd=HERE).start()


@pytest.fixture
def gunicorn(tmp_path):
    """Two workers of sample_app.py."""
    live = start_gunicorn(tmp_path / "gunicorn.log", 2)
    yield live
    live.stop()


def test_gunicorn_worker_serves_like_the_runtime_and_stops_cleanly(gunicorn):
    # The runtime's handler runs in the worker: framing checks, and a close answered with its code.
    request = b"POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: bogus\r\n\r\n"
    assert statuses(exchange(gunicorn.port, request)[0]) == [501]
    response, _ = exchange(
        gunicorn.port, b"GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    assert response.endswith(b"START\n\r\n7\r\nMIDDLE\n\r\n4\r\nEND\n\r\n0\r\n\r\n")
    ws = websocket.create_connection(f"{gunicorn.ws_url}/echo", timeout=10)
    ws.send("through gunicorn")
    assert ws.recv() == "through gunicorn"
    ws.send_close(4001, b"bye")
    opcode, data = ws.recv_data(control_frame=True)
    assert (opcode, int.from_bytes(data[:2], "big")) == (websocket.ABNF.OPCODE_CLOSE, 4001)
    ws.shutdown()

    # SIGTERM: open WebSockets hear "going away", then gunicorn exits cleanly.
    ws = websocket.create_connection(f"{gunicorn.ws_url}/echo", timeout=10)
    ws.send("still here")
    assert ws.recv() == "still here"
    gunicorn.process.send_signal(signal.SIGTERM)
    opcode, data = ws.recv_data(control_frame=True)
    assert int.from_bytes(data[:2], "big") == 1001
    ws.send_close(1001)
    assert gunicorn.process.wait(30) == 0, gunicorn.log
    assert "Traceback" not in gunicorn.log
    assert '"GET /stream HTTP/1.1" 200' in gunicorn.log  # gunicorn's own access log format


def test_gunicorn_with_a_certificate_serves_websockets_and_fan_out_over_tls(tmp_path, tls_files):
    """gunicorn's --certfile wraps each connection in TLS: echoes and broadcasts (which write
    without waiting) arrive whole and in order, never as bytes that skipped the encryption; a
    departed client is noticed by a long poll and is no error in the log."""
    cert, key = tls_files
    live = start_gunicorn(tmp_path / "tls.log", 1, "--certfile", str(cert), "--keyfile", str(key))
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False

    def get(path: str) -> bytes:
        with urllib.request.urlopen(f"https://127.0.0.1:{live.port}{path}", context=context) as r:
            return r.read()

    def waiting() -> int:
        return json.loads(get("/stats"))["waiting"]

    try:
        url = f"wss://127.0.0.1:{live.port}"
        options = {"sslopt": {"ca_certs": str(cert), "check_hostname": False}, "timeout": 10}
        ws = websocket.create_connection(f"{url}/echo", **options)
        ws.send("through TLS")
        assert ws.recv() == "through TLS"
        ws.close()

        listeners = [websocket.create_connection(f"{url}/fanout", **options) for _ in range(3)]
        assert [listener.recv() for listener in listeners] == ["joined"] * 3
        for number in range(20):
            listeners[0].send(f"news {number}")
        for listener in listeners:
            assert [listener.recv() for _ in range(20)] == [f"news {n}" for n in range(20)]
            listener.close()

        # A streamed response, written by the handler, passes through TLS too.
        assert get("/stream") == b"START\nMIDDLE\nEND\n"

        # A long poll notices its client leave; a client leaving mid-download is no error.
        for path in ("/wait", "/big"):
            raw = context.wrap_socket(socket.create_connection(("127.0.0.1", live.port)))
            raw.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            if path == "/wait":
                wait_until(lambda: waiting() == 1)
            else:
                assert raw.recv(1024).startswith(b"HTTP/1.1 200")
            raw.close()
        wait_until(lambda: waiting() == 0)
    finally:
        live.stop()
    assert "Traceback" not in live.log, live.log

"""The runtime's gunicorn worker: connections are served as `python -m` serves them."""

import signal
import sys

import pytest
import websocket
from conftest import LiveServer, process_env

from .conftest import HERE, QUICK
from .support import exchange, statuses

pytest.importorskip("gunicorn", reason="gunicorn tests need: pip install 'gunicorn[gevent]'")


@pytest.fixture
def gunicorn(tmp_path):
    """Two workers of sample_app.py on the runtime's worker class."""
    command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", "127.0.0.1:0"]
    command += ["--worker-class", "sample_app.SampleWorker", "--access-logfile", "-"]
    command += ["--graceful-timeout", "5", "sample_app:app"]
    live = LiveServer(command, process_env(**QUICK), tmp_path / "gunicorn.log", cwd=HERE).start()
    yield live
    if live.process.poll() is None:
        live.process.kill()
        live.process.wait()


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

"""The server process: it starts, serves, and stops cleanly on SIGTERM and Ctrl-C."""

import http.client
import signal
import socket
import time

import pytest


def test_sigterm_lets_an_open_stream_finish_and_refuses_new_clients(start_server):
    live = start_server()
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    connection.request("GET", "/stream")
    response = connection.getresponse()
    assert response.readline() == b"START\n"

    live.process.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", live.port), timeout=2)
    assert response.readline() == b"MIDDLE\n"
    assert response.readline() == b"END\n"
    connection.close()
    assert live.stop() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stops_cleanly_on_signal(start_server, signum):
    live = start_server()
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=5)
    connection.request("GET", "/no-such-page")
    assert connection.getresponse().status == 404
    connection.close()

    assert live.stop(signum) == 0
    assert "Traceback" not in live.log
    assert "stopped" in live.log


def test_access_log_has_one_line_per_request(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/healthz?from=access-log-test")
    assert connection.getresponse().read() == b'{"status": "ok"}'
    connection.close()
    deadline = time.monotonic() + 5
    while '"GET /healthz?from=access-log-test HTTP/1.1" 200' not in server.log:
        assert time.monotonic() < deadline, server.log[-2000:]
        time.sleep(0.05)

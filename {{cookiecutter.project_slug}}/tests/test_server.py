"""The real server process: it starts, serves, and stops cleanly on SIGTERM and Ctrl-C."""

import http.client
import signal
{%- if cookiecutter.use_stream %}
import socket
{%- endif %}
import subprocess
import sys
{%- if cookiecutter.use_stream %}
import time
{%- endif %}

import pytest
from conftest import process_env
{%- if cookiecutter.use_stream %}


def test_sigterm_lets_an_open_stream_finish_and_refuses_new_clients(start_server):
    server = start_server()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/stream")
    response = connection.getresponse()
    assert response.readline() == b"START\n"

    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2)
    assert response.readline() == b"MIDDLE\n"
    assert response.readline() == b"END\n"
    connection.close()
    assert server.stop() == 0
{%- endif %}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stops_cleanly_on_signal(start_server, signum):
    server = start_server()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/no-such-page")
    assert connection.getresponse().status == 404
    connection.close()

    assert server.stop(signum) == 0
    assert "Traceback" not in server.log
    assert "stopped" in server.log


def test_bad_flag_value_exits_with_a_clear_message():
    result = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=30,
        env=process_env(),
    )
    assert result.returncode == 2
    assert "port: 99999 is not a TCP port" in result.stderr

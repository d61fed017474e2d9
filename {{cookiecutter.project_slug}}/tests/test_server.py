"""The real server process: it starts, serves, and stops cleanly on SIGTERM and Ctrl-C."""

import http.client
import signal
import subprocess
import sys

import pytest
from conftest import process_env


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

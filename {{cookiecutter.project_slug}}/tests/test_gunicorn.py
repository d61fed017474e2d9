"""gunicorn with the project's worker: every enabled feature works through it."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
{%- if cookiecutter.use_websocket %}
import websocket
{%- endif %}
{%- if cookiecutter.use_chat %}
from conftest import http_json, process_env
{%- else %}
from conftest import FAST, process_env
{%- endif %}

PROJECT = Path(__file__).resolve().parent.parent
{%- if cookiecutter.use_chat and cookiecutter.broker == "memory" %}
WORKERS = 1  # the memory broker keeps rooms in one process
{%- else %}
WORKERS = 2
{%- endif %}


@pytest.fixture
def gunicorn(tmp_path{% if cookiecutter.use_chat %}, chat_settings{% endif %}):
    pytest.importorskip("gunicorn", reason="gunicorn tests need: pip install 'gunicorn[gevent]'")
    log = tmp_path / "gunicorn.log"
    settings = {{ 'chat_settings' if cookiecutter.use_chat else 'FAST' }}
    env = {**process_env(), **settings.to_env(), "WEB_CONCURRENCY": str(WORKERS)}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=PROJECT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 20
    while not (found := re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text())):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    # Wait until every worker has booted, so requests reach all of them.
    while log.read_text().count("Booting worker") < WORKERS:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    yield f"127.0.0.1:{found.group(1)}", process, log
    if process.poll() is None:
        process.kill()
        process.wait()


def get(address: str, path: str) -> bytes:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=15) as response:
        return response.read()


def test_gunicorn_serves_every_feature_and_stops_cleanly(gunicorn):
    address, process, log = gunicorn
    assert json.loads(get(address, "/healthz")) == {"status": "ok"}
{%- if cookiecutter.use_stream %}
    assert get(address, "/stream") == b"START\nMIDDLE\nEND\n"
{%- endif %}
{%- if cookiecutter.use_fetch %}
    assert get(address, "/fetch").decode().splitlines()[-1] == "chunk 3 of 3"
{%- endif %}
{%- if cookiecutter.use_js_client %}
    assert b"<!doctype html>" in get(address, "/")
{%- endif %}
{%- if cookiecutter.use_websocket %}
    ws = websocket.create_connection(f"ws://{address}/websocket", timeout=10)
    ws.send("through gunicorn")
    assert ws.recv() == "through gunicorn"
    # The project's own handler runs in the worker: a client's close gets its code back.
    ws.send_close(4001, b"bye")
    opcode, data = ws.recv_data(control_frame=True)
    assert (opcode, int.from_bytes(data[:2], "big")) == (websocket.ABNF.OPCODE_CLOSE, 4001)
    ws.shutdown()
{%- endif %}
{%- if cookiecutter.use_chat %}
    posted = http_json("POST", f"http://{address}/chat/gunicorn", {"text": "hi"})
    assert posted["text"] == "hi"
{%- if cookiecutter.use_fetch %}
    # Whichever worker answers, it sees the same room.
    for _ in range(4):
        assert json.loads(get(address, "/chat/gunicorn?since=0"))["messages"] == [posted]
{%- endif %}
{%- endif %}
{%- if cookiecutter.use_websocket %}

    # SIGTERM: open WebSockets hear "going away", then gunicorn exits cleanly.
    ws = websocket.create_connection(f"ws://{address}/websocket", timeout=10)
    ws.send("still here")
    assert ws.recv() == "still here"
    process.send_signal(signal.SIGTERM)
    opcode, data = ws.recv_data(control_frame=True)
    assert int.from_bytes(data[:2], "big") == 1001
    ws.send_close(1001)
{%- else %}
    process.send_signal(signal.SIGTERM)
{%- endif %}
    assert process.wait(30) == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    assert os.environ.get("PYTEST_CURRENT_TEST")  # ran under pytest, not by accident

"""gunicorn.conf.py: every feature of the app works through gunicorn's gevent workers."""

import json
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest
{%- if cookiecutter.use_websocket %}
import websocket
{%- endif %}
{%- if cookiecutter.use_chat %}
from conftest import LiveServer, http_json, process_env
{%- else %}
from conftest import FAST, LiveServer, process_env
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
    settings = {{ 'chat_settings' if cookiecutter.use_chat else 'FAST' }}
    env = process_env(**settings.to_env(), WEB_CONCURRENCY=str(WORKERS))
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    live = LiveServer(command, env, tmp_path / "gunicorn.log", cwd=PROJECT).start()
    # Wait until every worker has booted, so requests reach all of them.
    deadline = time.monotonic() + 20
    while live.log.count("Booting worker") < WORKERS:
        assert time.monotonic() < deadline, live.log
        time.sleep(0.1)
    yield live
    if live.process.poll() is None:
        live.process.kill()
        live.process.wait()


def get(live: LiveServer, path: str) -> bytes:
    with urllib.request.urlopen(f"{live.url}{path}", timeout=15) as response:
        return response.read()


def test_gunicorn_serves_every_feature_and_stops_cleanly(gunicorn):
    assert json.loads(get(gunicorn, "/healthz")) == {"status": "ok"}
{%- if cookiecutter.use_stream %}
    assert get(gunicorn, "/stream") == b"START\nMIDDLE\nEND\n"
{%- endif %}
{%- if cookiecutter.use_fetch %}
    assert get(gunicorn, "/fetch") == b"chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n"
{%- endif %}
{%- if cookiecutter.use_sse %}
    events = get(gunicorn, "/events")
    assert events.startswith(b"retry: 3000\n\n") and events.endswith(b"id: 3\ndata: END\n\n")
{%- endif %}
{%- if cookiecutter.use_js_client %}
    assert b"<!doctype html>" in get(gunicorn, "/")
{%- endif %}
{%- if cookiecutter.use_websocket %}
    ws = websocket.create_connection(f"{gunicorn.ws_url}/websocket", timeout=10)
    ws.send("through gunicorn")
    assert ws.recv() == "through gunicorn"
    ws.close()
{%- endif %}
{%- if cookiecutter.use_chat %}
    posted = http_json("POST", f"{gunicorn.url}/chat/gunicorn", {"text": "hi"})
    assert posted["text"] == "hi"
{%- if cookiecutter.use_fetch %}
    # Whichever worker answers, it sees the same room.
    for _ in range(4):
        assert json.loads(get(gunicorn, "/chat/gunicorn?since=0"))["messages"] == [posted]
{%- endif %}
{%- endif %}

    gunicorn.process.send_signal(signal.SIGTERM)
    assert gunicorn.process.wait(30) == 0, gunicorn.log
    assert "Traceback" not in gunicorn.log
    assert gunicorn.log.count('"GET /healthz HTTP/1.1" 200') == 1  # gunicorn's access log

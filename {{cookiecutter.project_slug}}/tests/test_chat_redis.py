"""The Redis broker across processes: a real redis-server and two app servers.

A message posted to one process reaches the long-poll and WebSocket clients of the other, in
order; after Redis restarts, delivery resumes without those clients reconnecting.
"""
{% if cookiecutter.use_websocket %}
import json
{%- endif %}
import time
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
{%- if cookiecutter.use_websocket %}
import websocket
{%- endif %}
from conftest import free_port, http_json

from {{ cookiecutter.package_name }}.chat_redis import RedisBroker


def post_when_ready(url: str, text: str, timeout: float = 15.0) -> dict:
    """POST, retrying while the broker answers 503 (Redis coming back)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return http_json("POST", url, {"text": text})
        except urllib.error.HTTPError as error:
            if error.code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_history_in_redis_is_bounded_and_ordered(start_server, settings, redis_server):
    redis_server.flush()
    server = start_server(replace(settings, redis_url=redis_server.url, chat_history=3))
    room = f"{server.url}/chat/bounded"
    sent = [post_when_ready(room, f"m{n}") for n in range(5)]
    assert [m["id"] for m in sent] == [1, 2, 3, 4, 5]
{%- if cookiecutter.use_fetch %}
    polled = http_json("GET", f"{room}?since=0")["messages"]
    assert [m["text"] for m in polled] == ["m2", "m3", "m4"]
{%- endif %}
    assert RedisBroker(redis_server.url, 3, 16).history("bounded", 3) == sent[3:]


def test_a_first_subscriber_reads_the_history_once(start_server, settings, redis_server):
    """History longer than a client's queue; the process's first subscriber starts the listener,
    whose catch-up must not push the history into that subscriber's queue as well."""
    redis_server.flush()
    chat_settings = replace(
        settings, redis_url=redis_server.url, chat_queue_size=3, chat_poll_timeout=2.0
    )
    writer = start_server(chat_settings)
    sent = [post_when_ready(f"{writer.url}/chat/late", f"m{n}") for n in range(6)]
{%- if cookiecutter.use_fetch %}

    # Nothing after the last id: the poll waits for news instead of answering at once.
    server = start_server(chat_settings)
    started = time.monotonic()
    polled = http_json("GET", f"{server.url}/chat/late?since={sent[-1]['id']}")
    assert polled == {"messages": [], "cursor": sent[-1]["id"]}
    assert time.monotonic() - started >= 1.5
{%- endif %}
{%- if cookiecutter.use_websocket %}

    # The history arrives once and in order, and the socket is not dropped as too slow.
    server = start_server(chat_settings)
    ws = websocket.create_connection(f"{server.ws_url}/chat/late/ws", timeout=10)
    assert [json.loads(ws.recv()) for _ in sent] == sent
    after = post_when_ready(f"{writer.url}/chat/late", "after")
    assert json.loads(ws.recv()) == after
    ws.close()
{%- endif %}


def test_two_processes_share_rooms_and_survive_a_redis_restart(
    start_server, settings, redis_server
):
    redis_server.flush()
    chat_settings = replace(settings, redis_url=redis_server.url, chat_poll_timeout=5.0)
    first, second = start_server(chat_settings), start_server(chat_settings)
    room_on_first = f"{first.url}/chat/shared"
{%- if cookiecutter.use_fetch %}
    room_on_second = f"{second.url}/chat/shared"
{%- endif %}
{%- if cookiecutter.use_websocket %}
    ws = websocket.create_connection(f"{second.ws_url}/chat/shared/ws", timeout=10)
{%- endif %}
    time.sleep(0.3)

    sent = [post_when_ready(room_on_first, f"before restart {n}") for n in range(5)]
    assert [m["id"] for m in sent] == [1, 2, 3, 4, 5]
{%- if cookiecutter.use_websocket %}
    assert [json.loads(ws.recv()) for _ in sent] == sent
{%- endif %}
{%- if cookiecutter.use_fetch %}
    assert http_json("GET", f"{room_on_second}?since=0")["messages"] == sent
{%- endif %}

    redis_server.stop()
    redis_server.start()

    after = post_when_ready(room_on_first, "after restart")
    assert after["id"] == 6  # persisted ids carry on
{%- if cookiecutter.use_websocket %}
    # The socket on the other process stayed open and gets the new message.
    assert json.loads(ws.recv()) == after
    ws.close()
{%- endif %}
{%- if cookiecutter.use_fetch %}
    assert http_json("GET", f"{room_on_second}?since=5")["messages"] == [after]
{%- endif %}
    assert "Traceback" not in first.log + second.log


def test_redis_down_gives_503_not_a_hang(start_server, settings):
    server = start_server(replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    request = urllib.request.Request(
        f"{server.url}/chat/down", data=b'{"text": "anyone?"}', method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 503
    assert error.value.headers["Retry-After"] == "1"

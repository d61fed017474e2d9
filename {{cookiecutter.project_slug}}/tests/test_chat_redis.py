"""The Redis broker across processes: a real redis-server, with no persistence at all, and two
app servers.

A message posted to one process reaches the long-poll and WebSocket clients of the other, in
order. After Redis restarts empty, ids keep increasing, delivery resumes without those clients
reconnecting, and a cursor from before the restart is told of the gap, never silently skipped.
"""
{% if cookiecutter.use_websocket or cookiecutter.use_sse %}
import json
{%- endif %}
import time
import urllib.error
import urllib.request

import pytest
{%- if cookiecutter.use_websocket %}
import websocket
{%- endif %}
from conftest import {{ "EventReader, " if cookiecutter.use_sse }}free_port, {{ "http_json, " if cookiecutter.use_fetch }}post_until_accepted

from {{ cookiecutter.package_name }}.chat_broker import id_key
from {{ cookiecutter.package_name }}.chat_redis import RedisBroker


def test_history_in_redis_is_bounded_ordered_and_reports_trimming(
    start_server, settings, redis_server
):
    redis_server.flush()
    server = start_server(settings, redis_url=redis_server.url, chat_history=3)
    room = f"{server.url}/chat/bounded"
    sent = [post_until_accepted(room, f"m{n}") for n in range(5)]
    assert [id_key(m["id"]) for m in sent] == sorted(id_key(m["id"]) for m in sent)
    broker = RedisBroker(redis_server.url, 3, 60)
    assert broker.history("bounded", None) == (sent[2:], None)
    assert broker.history("bounded", sent[3]["id"]) == ([sent[4]], None)
    assert broker.history("bounded", sent[0]["id"]) == (sent[2:], sent[1]["id"])
{%- if cookiecutter.use_fetch %}
    page = http_json("GET", f"{room}?since={sent[0]['id']}")
    assert (page["gap"], page["messages"], page["cursor"]) == (True, sent[2:], sent[-1]["id"])
{%- endif %}


def test_a_first_subscriber_reads_the_history_once(start_server, settings, redis_server):
    """History longer than a client's queue; the process's first subscriber starts the listener,
    whose catch-up must not push the history into that subscriber as well."""
    redis_server.flush()
    chat_settings = dict(redis_url=redis_server.url, chat_queue_size=3, chat_poll_timeout=2.0)
    writer = start_server(settings, **chat_settings)
    sent = [post_until_accepted(f"{writer.url}/chat/late", f"m{n}") for n in range(6)]
{%- if cookiecutter.use_fetch %}

    # Nothing after the last id: the poll waits for news instead of answering at once.
    server = start_server(settings, **chat_settings)
    started = time.monotonic()
    polled = http_json("GET", f"{server.url}/chat/late?since={sent[-1]['id']}")
    assert polled == {"messages": [], "cursor": sent[-1]["id"], "gap": False}
    assert time.monotonic() - started >= 1.5
{%- endif %}
{%- if cookiecutter.use_websocket %}

    # The history arrives once and in order, and the socket is not dropped as too slow.
    server = start_server(settings, **chat_settings)
    ws = websocket.create_connection(f"{server.ws_url}/chat/late/ws", timeout=10)
    assert [json.loads(ws.recv()) for _ in sent] == sent
    after = post_until_accepted(f"{writer.url}/chat/late", "after")
    assert json.loads(ws.recv()) == after
    ws.close()
    sent.append(after)
{%- endif %}
{%- if cookiecutter.use_sse %}

    # Through an event stream: the history once and in order, then what comes after.
    server = start_server(settings, **chat_settings)
    events = EventReader(f"{server.url}/chat/late/events")
    assert [json.loads(events.next()["data"]) for _ in sent] == sent
    after = post_until_accepted(f"{writer.url}/chat/late", "after, to the stream")
    assert json.loads(events.next()["data"]) == after
    events.close()
{%- endif %}


def test_two_processes_share_rooms_and_survive_a_redis_restart_without_persistence(
    start_server, settings, redis_server
):
    redis_server.flush()
    first = start_server(settings, redis_url=redis_server.url, chat_poll_timeout=5.0)
    second = start_server(settings, redis_url=redis_server.url, chat_poll_timeout=5.0)
    room_on_first = f"{first.url}/chat/shared"
{%- if cookiecutter.use_fetch %}
    room_on_second = f"{second.url}/chat/shared"
{%- endif %}
{%- if cookiecutter.use_websocket %}
    ws = websocket.create_connection(f"{second.ws_url}/chat/shared/ws", timeout=10)
{%- endif %}
{%- if cookiecutter.use_sse %}
    events = EventReader(f"{second.url}/chat/shared/events")
{%- endif %}
    time.sleep(0.3)

    before = [post_until_accepted(room_on_first, f"before restart {n}") for n in range(5)]
{%- if cookiecutter.use_websocket %}
    assert [json.loads(ws.recv()) for _ in before] == before
{%- endif %}
{%- if cookiecutter.use_fetch %}
    assert http_json("GET", f"{room_on_second}?since=0")["messages"] == before
{%- endif %}
{%- if cookiecutter.use_sse %}
    assert [json.loads(events.next()["data"]) for _ in before] == before
{%- endif %}
    cursor = before[-1]["id"]

    redis_server.stop()
    redis_server.start()  # empty: no persistence
    after = [post_until_accepted(room_on_first, f"after restart {n}") for n in range(20)]
    assert all(id_key(m["id"]) > id_key(cursor) for m in after)  # ids carry on
{%- if cookiecutter.use_websocket %}
    # The socket on the other process stayed open: it hears of the gap, then gets every message.
    notice = json.loads(ws.recv())  # the gap, and the cursor after which the history is whole
    assert notice["gap"] is True
    assert id_key(cursor) < id_key(notice["cursor"]) < id_key(after[0]["id"])
    assert [json.loads(ws.recv()) for _ in after] == after
    ws.close()
{%- endif %}
{%- if cookiecutter.use_sse %}
    # The event stream on the other process too: a gap event, then every message once.
    assert events.next()["event"] == "gap"
    assert [json.loads(events.next()["data"]) for _ in after] == after
    events.close()
    # A browser that reconnects, to either process, with the last id it got.
    resumed = EventReader(f"{first.url}/chat/shared/events", last_event_id=after[9]["id"])
    assert [json.loads(resumed.next()["data"]) for _ in after[10:]] == after[10:]
    resumed.close()
{%- endif %}
{%- if cookiecutter.use_fetch %}
    # A long poll with its cursor from before: the gap, and everything after it, once.
    page = http_json("GET", f"{room_on_second}?since={cursor}")
    assert (page["gap"], page["messages"]) == (True, after)
    assert http_json("GET", f"{room_on_second}?since={page['cursor']}")["messages"] == []
{%- endif %}
    assert "Traceback" not in first.log + second.log


def test_rooms_expire_in_redis_and_cursors_stay_valid(start_server, settings, redis_server):
    redis_server.flush()
    server = start_server(settings, redis_url=redis_server.url, chat_room_ttl=1)
    room = f"{server.url}/chat/expiring"
    old = post_until_accepted(room, "soon forgotten")
    deadline = time.monotonic() + 10
    while redis_server.command(b"EXISTS", b"chat:expiring", b"chat:expiring:floor") != b":0\r\n":
        assert time.monotonic() < deadline, "the room did not expire"
        time.sleep(0.2)
    new = post_until_accepted(room, "a new life")
    assert id_key(new["id"]) > id_key(old["id"])
    messages, gap = RedisBroker(redis_server.url, 100, 60).history("expiring", old["id"])
    assert messages == [new] and gap is not None


def test_redis_down_gives_503_not_a_hang(start_server, settings):
    server = start_server(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    body = b'{"text": "anyone?"}'
    request = urllib.request.Request(f"{server.url}/chat/down", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 503
    assert error.value.headers["Retry-After"] == "1"

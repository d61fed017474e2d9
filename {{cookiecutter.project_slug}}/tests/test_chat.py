"""Chat rooms: posting, history, long polls, WebSockets, and the slow-consumer policy."""

import json
{%- if cookiecutter.use_fetch %}
import time
{%- endif %}
{%- if cookiecutter.use_fetch %}
from concurrent.futures import ThreadPoolExecutor
{%- endif %}
{%- if cookiecutter.use_fetch or (cookiecutter.use_websocket and cookiecutter.broker == "memory") %}
from dataclasses import replace
{%- endif %}

import gevent
import pytest
{%- if cookiecutter.use_websocket %}
import websocket
{%- endif %}
import webtest
from conftest import http_json

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.chat_broker import MemoryBroker, SlowConsumer, TooManyRooms


@pytest.fixture
def broker():
    return MemoryBroker(history_size=5, queue_size=8)


def chat_client(settings, broker) -> webtest.TestApp:
    """The chat routes alone, on the given broker."""
    import bottle

    from {{ cookiecutter.package_name }} import chat

    app = bottle.Bottle()
    chat.install(app, settings, broker=broker)
    return webtest.TestApp(app)


@pytest.fixture
def chat(settings, broker):
    """The chat routes on a memory broker, whatever broker the project was generated with."""
    return chat_client(settings, broker)


def post(client, room: str, text: str, status: int = 201):
    return client.post(f"/chat/{room}", json.dumps({"text": text}), status=status)


def test_post_stores_a_message_with_increasing_ids(chat):
    first = post(chat, "lobby", "hello").json
    second = post(chat, "lobby", "again").json
    assert first["id"] == 1 and second["id"] == 2
    assert first["room"] == "lobby" and first["text"] == "hello"
    assert isinstance(first["ts"], float)
    assert post(chat, "other", "separate").json["id"] == 1  # ids count per room


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"not json", 400, "send JSON"),
        (b'["text"]', 400, "non-empty string"),
        (b'{"text": ""}', 400, "non-empty string"),
        (b'{"text": 5}', 400, "non-empty string"),
        (json.dumps({"text": "x" * 2001}).encode(), 413, "longer than 2000"),
        (b"{" + b" " * 70_000 + b"}", 413, "larger than"),
    ],
    ids=["not-json", "not-object", "empty", "number", "too-long", "body-too-big"],
)
def test_bad_posts_get_a_clear_status(chat, body, status, words):
    response = chat.post("/chat/lobby", body, status=status)
    assert words in response.text


def test_bad_room_names_and_cursors_are_refused(chat):
    chat.post("/chat/no spaces", b'{"text": "x"}', status=404)
    chat.post(f"/chat/{'x' * 65}", b'{"text": "x"}', status=404)
{%- if cookiecutter.use_fetch %}
    assert "since must be" in chat.get("/chat/lobby?since=-1", status=400).text
    assert "since must be" in chat.get("/chat/lobby?since=abc", status=400).text
{%- endif %}


def test_history_is_bounded_and_follows_the_cursor():
    broker = MemoryBroker(history_size=3, queue_size=8)
    for n in range(5):
        broker.publish("lobby", f"m{n}")
    assert [m["id"] for m in broker.history("lobby", 0)] == [3, 4, 5]
    assert [m["id"] for m in broker.history("lobby", 4)] == [5]
    assert broker.history("empty", 0) == []


def test_rooms_are_capped_and_idle_ones_make_way():
    broker = MemoryBroker(history_size=5, queue_size=8, max_rooms=2)
    broker.publish("quiet", "nobody listens")
    listened = broker.subscribe("busy")
    broker.publish("new", "hello")
    # "quiet" made way (and took its history along); "busy" has a listener and stays.
    assert set(broker.rooms) == {"busy", "new"}
    assert broker.history("quiet", 0) == []

    broker.subscribe("new")
    with pytest.raises(TooManyRooms):
        broker.publish("another", "every room is listened to")
    broker.unsubscribe(listened)
    broker.publish("another", "now one is free")
    assert set(broker.rooms) == {"new", "another"}


def test_a_new_room_when_all_are_listened_to_gets_503(settings):
    broker = MemoryBroker(history_size=5, queue_size=8, max_rooms=1)
    broker.subscribe("lobby")
    client = chat_client(settings, broker)
    response = post(client, "elsewhere", "hi", status=503)
    assert response.headers["Retry-After"] == "1"
    assert post(client, "lobby", "the listened room still works").json["id"] == 1
{%- if cookiecutter.use_fetch %}
    client.get("/chat/elsewhere", status=503)
{%- endif %}


def test_a_message_is_encoded_once_for_every_subscriber():
    broker = MemoryBroker(history_size=10, queue_size=3)
    first, second = broker.subscribe("lobby"), broker.subscribe("lobby")
    broker.publish("lobby", "to all")
    one, other = first.get(timeout=1), second.get(timeout=1)
    assert one.to_json() is other.to_json()  # the same string, made once
    assert one == {"id": 1, "room": "lobby", "text": "to all", "ts": one["ts"]}
    assert json.loads(one.to_json()) == one


def test_slow_subscriber_is_dropped_not_buffered():
    broker = MemoryBroker(history_size=10, queue_size=3)
    dropped = []
    subscription = broker.subscribe("lobby", on_overflow=lambda: dropped.append(True))
    for n in range(5):
        broker.publish("lobby", f"m{n}")
    gevent.sleep(0)
    assert dropped == [True]
    assert subscription.queue.qsize() == 3  # never more than its queue
    with pytest.raises(SlowConsumer):
        subscription.get()
{%- if cookiecutter.use_fetch %}


def test_poll_returns_history_at_once_then_waits_for_new_messages(chat, broker):
    post(chat, "lobby", "one")
    post(chat, "lobby", "two")
    page = chat.get("/chat/lobby?since=0").json
    assert [m["text"] for m in page["messages"]] == ["one", "two"]
    assert page["cursor"] == 2

    # Published by another greenlet while the poll waits (straight to the broker: Bottle's
    # request objects are per thread here, as this test process is not monkey-patched).
    poster = gevent.spawn_later(0.2, broker.publish, "lobby", "three")
    started = time.monotonic()
    page = chat.get("/chat/lobby?since=2").json
    assert [m["text"] for m in page["messages"]] == ["three"]
    assert 0.15 < time.monotonic() - started < 1.0
    poster.join()


def test_poll_times_out_empty_with_the_same_cursor(chat, settings):
    started = time.monotonic()
    assert chat.get("/chat/quiet?since=7").json == {"messages": [], "cursor": 7}
    assert time.monotonic() - started >= settings.chat_poll_timeout * 0.9
{%- endif %}


def test_app_mounts_the_chat(settings):
    client = webtest.TestApp(create_app(settings))
    # Refused before it reaches the broker: proves the route is there without needing one.
    assert "send JSON" in client.post("/chat/lobby", b"not json", status=400).text
{%- if cookiecutter.use_websocket %}


def test_websocket_gets_history_then_live_messages_and_can_post(chat_server):
    room = f"{chat_server.url}/chat/ws-room"
    http_json("POST", room, {"text": "before"})
    ws = websocket.create_connection(f"{chat_server.ws_url}/chat/ws-room/ws", timeout=5)
    try:
        assert json.loads(ws.recv())["text"] == "before"
        ws.send(json.dumps({"text": "from the socket"}))
        assert json.loads(ws.recv())["text"] == "from the socket"
        http_json("POST", room, {"text": "from http"})
        message = json.loads(ws.recv())
        assert (message["id"], message["text"]) == (3, "from http")
    finally:
        ws.close()


def test_websocket_resumes_after_its_cursor(chat_server):
    room = f"{chat_server.url}/chat/resume"
    for n in range(4):
        http_json("POST", room, {"text": f"m{n}"})
    ws = websocket.create_connection(f"{chat_server.ws_url}/chat/resume/ws?since=2", timeout=5)
    try:
        assert [json.loads(ws.recv())["id"] for _ in range(2)] == [3, 4]
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [("not json", 1007), (json.dumps({"text": "x" * 2001}), 1009)],
    ids=["not-json", "too-long"],
)
def test_bad_websocket_message_closes_with_a_code(chat_server, frame, code):
    ws = websocket.create_connection(f"{chat_server.ws_url}/chat/bad/ws", timeout=5)
    ws.send(frame)
    opcode, data = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(data[:2], "big") == code
    ws.shutdown()
{%- if cookiecutter.broker == "memory" %}


def test_socket_for_a_new_room_when_all_are_listened_to_closes_with_1013(start_server, settings):
    server = start_server(replace(settings, chat_max_rooms=1))
    listener = websocket.create_connection(f"{server.ws_url}/chat/lobby/ws", timeout=5)
    refused = websocket.create_connection(f"{server.ws_url}/chat/elsewhere/ws", timeout=5)
    opcode, data = refused.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(data[:2], "big") == 1013  # try again later
    refused.shutdown()
    listener.send(json.dumps({"text": "still chatting"}))
    assert json.loads(listener.recv())["text"] == "still chatting"
    listener.close()
{%- endif %}
{%- endif %}
{%- if cookiecutter.use_fetch and cookiecutter.use_websocket %}


def test_pollers_and_sockets_see_the_same_messages_in_order(chat_server):
    ws = websocket.create_connection(f"{chat_server.ws_url}/chat/same/ws", timeout=5)
    room = f"{chat_server.url}/chat/same"
    sent = [f"message {n}" for n in range(20)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        # Posts race each other: the broker's ids decide the one order everyone sees.
        list(pool.map(lambda text: http_json("POST", room, {"text": text}), sent))
    by_socket = [json.loads(ws.recv()) for _ in sent]
    ws.close()

    polled, cursor = [], 0
    while len(polled) < len(sent):
        page = http_json("GET", f"{room}?since={cursor}")
        polled += page["messages"]
        cursor = page["cursor"]
    assert [m["id"] for m in by_socket] == list(range(1, 21))
    assert by_socket == polled
    assert sorted(m["text"] for m in polled) == sorted(sent)
{%- endif %}
{%- if cookiecutter.use_fetch %}


def test_many_pollers_wait_at_once_without_threads(start_server, chat_settings):
    server = start_server(replace(chat_settings, chat_poll_timeout=5.0))
    url = f"{server.url}/chat/crowd?since=0"
    with ThreadPoolExecutor(max_workers=50) as pool:
        waiting = [pool.submit(http_json, "GET", url) for _ in range(50)]
        time.sleep(0.5)  # all fifty are now parked in the server, each on a greenlet
        http_json("POST", f"{server.url}/chat/crowd", {"text": "hello, everyone"})
        pages = [future.result(timeout=10) for future in waiting]
    assert all([m["text"] for m in page["messages"]] == ["hello, everyone"] for page in pages)
{%- endif %}

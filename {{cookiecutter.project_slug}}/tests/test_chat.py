"""Chat rooms: ids and cursors, history and its gaps, bad input, fair sharing, and every client
getting each message once, in order, across a restart of the server."""

{% if cookiecutter.use_sse -%}
import gc
{% endif -%}
import json
import socket
import time
import urllib.error
{%- if cookiecutter.use_fetch %}
from concurrent.futures import ThreadPoolExecutor
{%- endif %}
from dataclasses import replace

import bottle
{%- if cookiecutter.use_fetch or cookiecutter.use_sse %}
import gevent
{%- endif %}
import pytest
{%- if cookiecutter.use_websocket %}
import websocket
{%- endif %}
import webtest
{%- if cookiecutter.use_sse %}
from conftest import EventReader, {{ "free_port, " if cookiecutter.broker == "memory" }}http_json{{ ", post_until_accepted" if cookiecutter.use_websocket }}
from gevent.pywsgi import WSGIServer
from gevent.socket import create_connection
from greenlet import greenlet
{%- else %}
from conftest import {{ "free_port, " if cookiecutter.broker == "memory" }}http_json{{ ", post_until_accepted" if cookiecutter.use_websocket }}
{%- endif %}

from {{ cookiecutter.package_name }} import chat
from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.chat_broker import MemoryBroker, TooManyRooms, id_key
from {{ cookiecutter.package_name }}.chat_limits import nesting_exceeds
{%- if cookiecutter.use_sse %}
from {{ cookiecutter.package_name }}.runtime.lifecycle import Runtime
{%- endif %}


def chat_client(settings, broker) -> webtest.TestApp:
    """The chat routes alone, on the given broker (a memory one, whatever the project uses)."""
    app = bottle.Bottle()
    chat.install(app, settings, broker=broker)
    return webtest.TestApp(app)


@pytest.fixture
def broker():
    return MemoryBroker(history_size=5)


@pytest.fixture
def client(settings, broker):
    return chat_client(settings, broker)


def post(client, room: str, text: str, status: int = 201):
    return client.post(f"/chat/{room}", json.dumps({"text": text}), status=status)


def post_status(url: str, text: str) -> int:
    """POST a message over a real socket; the status, whatever it is."""
    try:
        http_json("POST", url, {"text": text})
    except urllib.error.HTTPError as error:
        return error.code
    return 201


class Collector:
    """A subscriber that keeps what it is given."""

    def __init__(self) -> None:
        self.messages = []

    def deliver(self, message) -> None:
        self.messages.append(message)

    def lost(self, after: str) -> None:
        raise AssertionError("the memory broker reports gaps through history(), not to listeners")


# Ids and history


def test_ids_are_opaque_strings_that_increase_and_count_per_room(client):
    first = post(client, "lobby", "hello").json
    second = post(client, "lobby", "again").json
    assert isinstance(first["id"], str) and id_key(first["id"]) < id_key(second["id"])
    assert first["room"] == "lobby" and first["text"] == "hello"
    assert isinstance(first["ts"], float)
    assert post(client, "other", "separate").json["id"]  # another room, its own sequence


def test_ids_keep_increasing_after_a_restart_of_the_broker():
    """A memory broker starts empty when the server restarts; its ids still follow the old."""
    before = [MemoryBroker(history_size=5).publish("lobby", "old") for _ in range(3)]
    time.sleep(0.002)  # a restart takes longer than the millisecond in an id
    after = MemoryBroker(history_size=5).publish("lobby", "new")
    assert id_key(after["id"]) > max(id_key(m["id"]) for m in before)


def test_history_is_bounded_and_reports_what_was_trimmed():
    broker = MemoryBroker(history_size=3)
    sent = [broker.publish("lobby", f"m{n}") for n in range(5)]
    assert broker.history("lobby", None) == (sent[2:], None)
    assert broker.history("lobby", sent[3]["id"]) == ([sent[4]], None)
    assert broker.history("lobby", sent[1]["id"]) == (sent[2:], None)  # m1 was its last one
    # A cursor before the trimmed ones: what exists, and where the whole history starts.
    assert broker.history("lobby", sent[0]["id"]) == (sent[2:], sent[1]["id"])


def test_a_cursor_from_before_a_restart_is_told_about_the_gap():
    old = MemoryBroker(history_size=5).publish("lobby", "before the restart")
    time.sleep(0.002)  # a restart takes longer than the millisecond in an id
    restarted = MemoryBroker(history_size=5)
    restarted.subscribe("lobby", Collector())
    new = restarted.publish("lobby", "after the restart")
    messages, gap = restarted.history("lobby", old["id"])
    assert messages == [new]
    assert gap is not None and id_key(old["id"]) < id_key(gap) < id_key(new["id"])
    assert restarted.history("lobby", gap) == ([new], None)  # from the gap on: whole, once


def test_rooms_are_capped_and_only_rooms_without_listeners_make_way():
    broker = MemoryBroker(history_size=5, max_rooms=2)
    broker.publish("quiet", "nobody listens")
    listener = Collector()
    broker.subscribe("busy", listener)
    broker.publish("busy", "kept")
    for n in range(10):
        broker.publish(f"new-{n}", "hello")  # each replaces the idle room, never "busy"
    assert set(broker.rooms) == {"busy", "new-9"}
    assert [m["text"] for m in broker.history("busy", None)[0]] == ["kept"]

    broker.subscribe("new-9", Collector())
    with pytest.raises(TooManyRooms):
        broker.publish("another", "every room is listened to")
    broker.unsubscribe("busy", listener)
    broker.publish("another", "now one is free")
    assert set(broker.rooms) == {"new-9", "another"}


def test_a_message_is_encoded_once_for_every_subscriber():
    broker = MemoryBroker(history_size=10)
    first, second = Collector(), Collector()
    broker.subscribe("lobby", first)
    broker.subscribe("lobby", second)
    broker.publish("lobby", "to all")
    one, other = first.messages[0], second.messages[0]
    assert one is other
    assert one.to_json() is other.to_json() and one.frame() is other.frame()
    assert json.loads(one.to_json()) == one


# Bad input


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"not json", 400, "send JSON"),
        (b"\xff\xfe", 400, "send JSON"),
        (b'["text"]', 400, "non-empty string"),
        (b'{"text": ""}', 400, "non-empty string"),
        (b'{"text": 5}', 400, "non-empty string"),
        (b'{"text": "x", "more": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", 413, "at most"),
        (b'{"text": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", 400, "not nested"),
        (json.dumps({"text": "x" * 2001}).encode(), 413, "longer than 2000"),
        (b"{" + b" " * 70_000 + b"}", 413, "at most"),
    ],
    ids=[
        "not-json",
        "not-utf8",
        "not-object",
        "empty",
        "number",
        "deep-and-big",
        "deep",
        "too-long",
        "body-too-big",
    ],
)
def test_bad_posts_get_a_clear_status(client, body, status, words):
    response = client.post("/chat/lobby", body, status=status)
    assert words in response.text


def test_nesting_is_measured_outside_strings_only():
    assert not nesting_exceeds('{"text": "[[[[[[{ { { { \\" [[[["}', 2)
    assert nesting_exceeds('{"a": [[[1]]]}', 3)
    assert not nesting_exceeds('{"a": [[1]]}', 3)


def test_bad_room_names_are_not_rooms(client):
    client.post("/chat/no spaces", b'{"text": "x"}', status=404)
    client.post(f"/chat/{'x' * 65}", b'{"text": "x"}', status=404)
{%- if cookiecutter.use_fetch %}


@pytest.mark.parametrize(
    "since", ["-1", "abc", "%B2", "1" * 4301, "1-2-3", "1.5", "1-", "-1"], ids=repr
)
def test_bad_cursors_get_400_with_a_reason(client, since):
    response = client.get(f"/chat/lobby?since={since}", status=400)
    assert "since must be the id of the last message you have" in response.text
{%- endif %}


# Fair sharing


def test_posts_past_the_burst_get_429_with_retry_after(settings):
    client = chat_client(replace(settings, chat_post_burst=3, chat_post_rate=0.5), MemoryBroker(5))
    for n in range(3):
        post(client, "lobby", f"m{n}")
    response = post(client, "lobby", "one too many", status=429)
    assert response.headers["Retry-After"] == "2"  # one token every 2 s
    assert "too many messages" in response.text
{%- if cookiecutter.use_fetch %}


# Long polls


def test_poll_returns_history_at_once_then_waits_for_new_messages(client, broker):
    sent = [post(client, "lobby", text).json for text in ("one", "two")]
    page = client.get("/chat/lobby?since=0").json
    assert page == {"messages": sent, "cursor": sent[-1]["id"], "gap": False}

    # Published by another greenlet while the poll waits (straight to the broker: Bottle's
    # request objects are per thread here, as this test process is not monkey-patched).
    poster = gevent.spawn_later(0.2, broker.publish, "lobby", "three")
    started = time.monotonic()
    page = client.get(f"/chat/lobby?since={sent[-1]['id']}").json
    assert [m["text"] for m in page["messages"]] == ["three"]
    assert 0.15 < time.monotonic() - started < 1.0
    poster.join()


def test_poll_times_out_empty_with_the_same_cursor(client, broker, settings):
    cursor = post(client, "quiet", "the last one").json["id"]
    started = time.monotonic()
    assert client.get(f"/chat/quiet?since={cursor}").json == {
        "messages": [],
        "cursor": cursor,
        "gap": False,
    }
    assert time.monotonic() - started >= settings.chat_poll_timeout * 0.9


def test_poll_reports_a_gap_once_and_moves_past_it(client, broker):
    sent = [post(client, "lobby", f"m{n}").json for n in range(8)]  # the history keeps 5
    page = client.get(f"/chat/lobby?since={sent[0]['id']}").json
    assert page["gap"] is True
    assert page["messages"] == sent[3:]
    again = client.get(f"/chat/lobby?since={sent[1]['id']}").json
    assert again["gap"] is True and again["messages"] == sent[3:]
{%- endif %}


def test_a_chunked_post_is_read_once_and_stored(chat_server):
    """Some clients send JSON with Transfer-Encoding: chunked; the server de-chunks it once."""
    body = json.dumps({"text": "sent in chunks"}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:]))
    request = (
        b"POST /chat/chunked HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", chat_server.port), timeout=5) as sock:
        sock.sendall(request)
        response = b""
        while data := sock.recv(65536):
            response += data
    head, _, stored = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201")
    assert json.loads(stored)["text"] == "sent in chunks"


def test_app_mounts_the_chat(settings):
    client = webtest.TestApp(create_app(settings))
    # Refused before it reaches the broker: proves the route is there without needing one.
    assert "send JSON" in client.post("/chat/lobby", b"not json", status=400).text
{%- if cookiecutter.use_websocket %}


# WebSockets, against the real server


def connect(server, room: str, since: str | None = None) -> websocket.WebSocket:
    query = f"?since={since}" if since else ""
    return websocket.create_connection(f"{server.ws_url}/chat/{room}/ws{query}", timeout=5)


def receive_json(ws: websocket.WebSocket) -> dict:
    return json.loads(ws.recv())


def close_code(ws: websocket.WebSocket) -> int:
    """Skip to the server's close frame; its code."""
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big")


def test_websocket_gets_history_then_live_messages_and_can_post(chat_server):
    room = f"{chat_server.url}/chat/ws-room"
    before = http_json("POST", room, {"text": "before"})
    ws = connect(chat_server, "ws-room")
    try:
        assert receive_json(ws) == before
        ws.send(json.dumps({"text": "from the socket"}))
        assert receive_json(ws)["text"] == "from the socket"
        after = http_json("POST", room, {"text": "from http"})
        assert receive_json(ws) == after
    finally:
        ws.close()


def test_websocket_resumes_after_its_cursor(chat_server):
    room = f"{chat_server.url}/chat/resume"
    sent = [http_json("POST", room, {"text": f"m{n}"}) for n in range(4)]
    ws = connect(chat_server, "resume", since=sent[1]["id"])
    try:
        assert [receive_json(ws) for _ in range(2)] == sent[2:]
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", 1007),
        (json.dumps({"text": "x" * 2001}), 1009),
        ('{"text": ' + "[" * 100 + "]" * 100 + "}", 1007),
    ],
    ids=["not-json", "too-long", "nested"],
)
def test_bad_websocket_message_closes_with_a_code(chat_server, frame, code):
    ws = connect(chat_server, "bad")
    ws.send(frame)
    assert close_code(ws) == code
    ws.shutdown()


def test_nothing_from_a_socket_is_published_after_the_server_closes_it(chat_server):
    listener = connect(chat_server, "after-close")
    rude = connect(chat_server, "after-close")
    rude.send("not json")
    rude.send(json.dumps({"text": "sent after the 1007"}))
    assert close_code(rude) == 1007
    rude.shutdown()
    marker = http_json("POST", f"{chat_server.url}/chat/after-close", {"text": "marker"})
    assert receive_json(listener) == marker  # the first thing it hears: nothing came before
    listener.close()


def test_a_bad_websocket_cursor_closes_with_1008(chat_server):
    ws = connect(chat_server, "lobby", since="%B2")
    assert close_code(ws) == 1008
    ws.shutdown()


def test_a_flood_closes_the_flooder_and_the_others_keep_everything(start_server, chat_settings):
    """One client writes 1,000 messages in one write: it is closed with 1008 once past its
    burst, and the well-reading listeners get each message that was published, in order."""
    server = start_server(chat_settings, chat_post_burst=20, chat_post_rate=2.0)
    listeners = [connect(server, "loud") for _ in range(2)]
    flooder = connect(server, "loud")
    frames = [
        websocket.ABNF.create_frame(json.dumps({"text": f"flood {n}"}), websocket.ABNF.OPCODE_TEXT)
        for n in range(1000)
    ]
    flooder.sock.sendall(b"".join(frame.format() for frame in frames))
    assert close_code(flooder) == 1008
    flooder.shutdown()
    post_until_accepted(f"{server.url}/chat/loud", "still here")
    heard = []
    for listener in listeners:
        received = []
        while (message := receive_json(listener))["text"] != "still here":
            received.append(message["text"])
        heard.append(received)
        listener.close()
    assert heard[0] == heard[1] == [f"flood {n}" for n in range(len(heard[0]))]
    assert 20 <= len(heard[0]) <= 25  # the burst, and what trickled in at 2 a second


def test_a_client_that_stops_reading_is_dropped_and_the_others_are_not(start_server, chat_settings):
    """Messages of 60,000 characters, far more than socket buffers hold: the client that reads
    gets each of them in order; the one that stops reading is dropped with 1013."""
    server = start_server(chat_settings, chat_queue_size=4, chat_max_text=60_000)
    reader = connect(server, "slow")
    stalled = websocket.create_connection(  # a small receive window, set before connecting
        f"{server.ws_url}/chat/slow/ws",
        timeout=5,
        sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)],
    )
    for n in range(100):
        http_json("POST", f"{server.url}/chat/slow", {"text": f"{n:03} " + "x" * 59_000})
        assert receive_json(reader)["text"].startswith(f"{n:03} ")
    assert close_code(stalled) == 1013
    reader.close()


{%- if cookiecutter.broker == "memory" %}


def test_socket_for_a_new_room_when_all_are_listened_to_closes_with_1013(start_server, settings):
    server = start_server(settings, chat_max_rooms=1)
    listener = connect(server, "lobby")
    refused = connect(server, "elsewhere")
    assert close_code(refused) == 1013  # try again later
    refused.shutdown()
    listener.send(json.dumps({"text": "still chatting"}))
    assert receive_json(listener)["text"] == "still chatting"
    listener.close()
{%- endif %}
{%- endif %}
{%- if cookiecutter.use_fetch and cookiecutter.use_websocket %}


def test_pollers_and_sockets_see_the_same_messages_in_order(chat_server):
    ws = connect(chat_server, "same")
    room = f"{chat_server.url}/chat/same"
    sent = [f"message {n}" for n in range(20)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        # Posts race each other: the broker's ids decide the one order everyone sees.
        list(pool.map(lambda text: http_json("POST", room, {"text": text}), sent))
    by_socket = [receive_json(ws) for _ in sent]
    ws.close()

    polled, cursor = [], "0"
    while len(polled) < len(sent):
        page = http_json("GET", f"{room}?since={cursor}")
        polled += page["messages"]
        cursor = page["cursor"]
    assert by_socket == polled
    assert sorted(m["id"] for m in polled) == [m["id"] for m in polled]
    assert sorted(m["text"] for m in polled) == sorted(sent)
{%- endif %}
{%- if cookiecutter.use_fetch %}


def test_many_pollers_wait_at_once_without_threads(start_server, chat_settings):
    server = start_server(chat_settings, chat_poll_timeout=5.0)
    url = f"{server.url}/chat/crowd?since=0"
    with ThreadPoolExecutor(max_workers=50) as pool:
        waiting = [pool.submit(http_json, "GET", url) for _ in range(50)]
        time.sleep(0.5)  # all fifty are now parked in the server, each on a greenlet
        http_json("POST", f"{server.url}/chat/crowd", {"text": "hello, everyone"})
        pages = [future.result(timeout=10) for future in waiting]
    assert all([m["text"] for m in page["messages"]] == ["hello, everyone"] for page in pages)
{%- if cookiecutter.broker == "memory" %}


def test_a_departed_long_poll_frees_its_room_at_once(start_server, settings):
    """With one room allowed, a room with a waiting poll cannot make way; once that poll's
    client has gone (long before the poll's timeout), it can."""
    server = start_server(settings, chat_max_rooms=1, chat_poll_timeout=30.0)
    poller = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    poller.sendall(b"GET /chat/first?since=0 HTTP/1.1\r\nHost: t\r\n\r\n")
    # Once the poll waits, "first" has a listener: no new room (a post to "second" that comes
    # before it makes a room that the poll's then replaces).
    deadline = time.monotonic() + 5
    while post_status(f"{server.url}/chat/second", "hi") != 503:
        assert time.monotonic() < deadline, "a room with a waiting poll made way"
        time.sleep(0.1)
    poller.close()
    deadline = time.monotonic() + 2
    while post_status(f"{server.url}/chat/second", "hi") != 201:
        assert time.monotonic() < deadline, "the departed poll still holds its room"
        time.sleep(0.1)
{%- endif %}
{%- endif %}
{%- if cookiecutter.broker == "memory" %}


def test_cursors_survive_a_restart_of_the_server(start_server, settings):
    """The memory broker loses its history with the process; ids keep increasing, and a client
    that comes back with its cursor hears of the gap, then gets every new message once."""
    port = free_port()
    first = start_server(settings, port=port)
    before = [http_json("POST", f"{first.url}/chat/restart", {"text": "old"}) for _ in range(3)]
    cursor = before[-1]["id"]
    assert first.stop() == 0
    second = start_server(settings, port=port)
{%- if cookiecutter.use_websocket %}
    ws = connect(second, "restart", since=cursor)  # as the page does when it reconnects
{%- endif %}
    after = [http_json("POST", f"{second.url}/chat/restart", {"text": "new"}) for _ in range(2)]
    assert all(id_key(m["id"]) > id_key(cursor) for m in after)
{%- if cookiecutter.use_websocket %}
    notice = receive_json(ws)  # the gap, and the cursor after which the history is whole
    assert notice["gap"] is True
    assert id_key(cursor) < id_key(notice["cursor"]) < id_key(after[0]["id"])
    assert [receive_json(ws) for _ in after] == after
    ws.close()
{%- endif %}
{%- if cookiecutter.use_fetch %}
    page = http_json("GET", f"{second.url}/chat/restart?since={cursor}")
    assert page["gap"] is True and page["messages"] == after
    assert http_json("GET", f"{second.url}/chat/restart?since={page['cursor']}")["messages"] == []
{%- endif %}
{%- if cookiecutter.use_sse %}
    # An EventSource reconnects by itself with the last id it got: a gap event, then the rest.
    events = EventReader(f"{second.url}/chat/restart/events", last_event_id=cursor)
    gap = events.next()
    assert gap["event"] == "gap" and json.loads(gap["data"]) == {"gap": True, "cursor": gap["id"]}
    assert [json.loads(events.next()["data"]) for _ in after] == after
    events.close()
{%- endif %}
{%- endif %}
{%- if cookiecutter.use_sse %}


# Server-Sent Events, against the real server


def test_event_stream_gets_history_then_live_messages_each_with_its_id(chat_server):
    room = f"{chat_server.url}/chat/sse-room"
    before = http_json("POST", room, {"text": "before"})
    events = EventReader(f"{room}/events")
    try:
        first = events.next()
        assert (first["id"], json.loads(first["data"])) == (before["id"], before)
        after = [http_json("POST", room, {"text": f"live {n}"}) for n in range(5)]
        for message in after:
            event = events.next()
            assert (event["id"], json.loads(event["data"])) == (message["id"], message)
    finally:
        events.close()


def test_event_stream_resumes_after_last_event_id_or_since(chat_server):
    room = f"{chat_server.url}/chat/sse-resume"
    sent = [http_json("POST", room, {"text": f"m{n}"}) for n in range(4)]
    by_header = (f"{room}/events", sent[1]["id"])
    by_query = (f"{room}/events?since={sent[1]['id']}", None)
    for url, last in [by_header, by_query]:
        events = EventReader(url, last_event_id=last)
        assert [json.loads(events.next()["data"]) for _ in range(2)] == sent[2:]
        events.close()


@pytest.mark.parametrize("last", ["abc", "%B2", "1" * 4301, "1-2-3"])
def test_a_bad_last_event_id_gets_400(chat_server, last):
    events = EventReader(f"{chat_server.url}/chat/lobby/events", last_event_id=last)
    assert events.response.status == 400
    assert b"since must be the id of the last message you have" in events.response.read()
    events.close()


def test_pollers_sockets_and_streams_see_the_same_messages_in_order(chat_server):
    room = f"{chat_server.url}/chat/three-ways"
    events = EventReader(f"{room}/events")
{%- if cookiecutter.use_websocket %}
    ws = connect(chat_server, "three-ways")
{%- endif %}
    sent = [http_json("POST", room, {"text": f"message {n}"}) for n in range(10)]
    streamed = [json.loads(events.next()["data"]) for _ in sent]
    events.close()
    assert streamed == sent
{%- if cookiecutter.use_websocket %}
    assert [receive_json(ws) for _ in sent] == sent
    ws.close()
{%- endif %}
{%- if cookiecutter.use_fetch %}
    assert http_json("GET", f"{room}?since=0")["messages"] == sent
{%- endif %}


def test_a_departed_event_stream_lets_go_of_its_room(settings):
    """Its greenlet, its queue and its subscription go when the client does: at the next
    heartbeat at the latest (here 0.1 s)."""
    settings = replace(settings, sse_heartbeat=0.1)
    broker = MemoryBroker(history_size=5)
    app = bottle.Bottle()
    chat.install(app, settings, broker=broker)
    # gevent's own server and sockets work here without monkey-patching this process.
    handler = Runtime(settings).handler_class
    server = WSGIServer(("127.0.0.1", 0), app, handler_class=handler, log=None)
    server.start()
    try:
        idle = live_greenlets()
        client = create_connection(server.address)
        client.sendall(b"GET /chat/gone/events HTTP/1.1\r\nHost: t\r\n\r\n")
        assert b"retry: 3000" in client.recv(65536)
        assert len(broker.rooms["gone"].subscribers) == 1
        assert live_greenlets() > idle
        client.close()
        with gevent.Timeout(5):
            while broker.rooms["gone"].subscribers or live_greenlets() > idle:
                gevent.sleep(0.05)
    finally:
        server.stop()


def live_greenlets() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet) and not obj.dead)
{%- endif %}

"""Chat rooms: the primer's motivating example, a chat whose clients wait on greenlets.

POST /chat/<room>             sends {"text": "..."}; answers 201 with the stored message
{%- if cookiecutter.use_fetch %}
GET  /chat/<room>?since=<id>  long poll: the messages after `since` at once if there are any,
                              else the next ones, or none after chat_poll_timeout
{%- endif %}
{%- if cookiecutter.use_websocket %}
GET  /chat/<room>/ws?since=<id>  WebSocket: the messages after `since`, then every new one;
                                 send {"text": "..."} to post
{%- endif %}
{%- if cookiecutter.use_sse %}
GET  /chat/<room>/events      Server-Sent Events: the messages after Last-Event-ID (or
                              `since`), then every new one, each an event with its id
{%- endif %}

Every client sees the same messages in the same order, each once: it keeps the id of the last
message it has as its cursor and gives it back when it polls or reconnects. When part of what
came after a cursor is gone (trimmed from the history, or lost with a restart), the answer
says so ("gap") instead of leaving a silent hole.
"""

import json
{%- if cookiecutter.use_sse %}
from collections.abc import Iterator
{%- endif %}
{%- if cookiecutter.use_websocket %}
from urllib.parse import parse_qs
{%- endif %}

import bottle
{%- if cookiecutter.use_fetch or cookiecutter.use_websocket %}
import gevent
{%- endif %}
{%- if cookiecutter.use_fetch or cookiecutter.use_sse %}
from gevent.event import Event
{%- endif %}

from .chat_broker import Broker, BrokerUnavailable, Message, id_key, make_broker, parse_cursor
from .chat_limits import AddressLimits, {{ "TokenBucket, " if cookiecutter.use_websocket }}client_address, nesting_exceeds, retry_after
{%- if cookiecutter.use_websocket %}
from .runtime.routing import websocket_route
from .runtime.websocket import WebSocket, text_frame
{%- endif %}
from .settings import Settings
{%- if cookiecutter.use_sse %}
from .sse import HEARTBEAT, RETRY, event, start_event_stream
{%- endif %}

ROOM = "<room:re:[A-Za-z0-9_-]{1,64}>"
MAX_BODY = 64 * 1024  # bytes of JSON accepted for one message, before even parsing it
MAX_DEPTH = 4  # a message is {"text": "..."}: anything nested deeper is not one


class BadMessage(ValueError):
    """What a client sent is not a chat message; `status` and `close_code` say how to answer."""

    def __init__(self, reason: str, status: int = 400, close_code: int = 1007) -> None:
        super().__init__(reason)
        self.status = status
        self.close_code = close_code


def parse_message(raw: str | bytes, max_text: int) -> str:
    """The text of a {"text": "..."} message, or BadMessage."""
    if len(raw) > MAX_BODY:
        raise BadMessage(f"a message is at most {MAX_BODY} bytes of JSON", 413, 1009)
    try:
        raw = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise BadMessage('send JSON such as {"text": "hello"}') from None
    if nesting_exceeds(raw, MAX_DEPTH):
        raise BadMessage('send JSON such as {"text": "hello"}, not nested structures')
    try:
        data = json.loads(raw)
    except ValueError:
        raise BadMessage('send JSON such as {"text": "hello"}') from None
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise BadMessage('"text" must be a non-empty string')
    if len(text) > max_text:
        raise BadMessage(f'"text" is longer than {max_text} characters', 413, 1009)
    return text


def cursor(raw: str | None) -> str | None:
    """The `since` of an HTTP request; a one-line 400 if it is not a cursor."""
    try:
        return parse_cursor(raw)
    except ValueError as error:
        bottle.abort(400, str(error))


def unavailable(reason: str) -> None:
    """503 with Retry-After: the broker is away (e.g. Redis restarting), the client retries."""
    raise bottle.HTTPError(503, reason, **{"Retry-After": "1"})
{%- if cookiecutter.use_fetch %}


class PollSubscriber:
    """A long poll waiting in a room: it collects what arrives and wakes its request."""

    __slots__ = ("messages", "limit", "gap", "ready", "last")

    def __init__(self, limit: int, since: str | None) -> None:
        self.messages: list[Message] = []
        self.limit = limit  # past it, the client gets the rest from the history next time
        self.gap = False
        self.ready = Event()
        self.last = id_key(since) if since else None  # the key of the last message it has

    def deliver(self, message: Message) -> None:
        key = message.key()
        if self.last is not None and key <= self.last:
            return  # had it already
        if len(self.messages) < self.limit:
            self.messages.append(message)
            self.last = key
        self.ready.set()

    def lost(self, after: str) -> None:
        self.gap = True
        self.ready.set()
{%- endif %}
{%- if cookiecutter.use_websocket %}


class SocketSubscriber:
    """A WebSocket in a room. A new message goes straight into the socket from the greenlet
    that publishes it: a broadcast costs one write per socket, not a greenlet switch each. A
    socket whose client reads too slowly to keep `limit` frames in flight is dropped with 1013
    (it comes back with its cursor); the others are not held up.
    """

    __slots__ = ("ws", "limit", "early", "last")

    def __init__(self, ws: WebSocket, limit: int) -> None:
        self.ws = ws
        self.limit = limit
        self.early: list[Message] | None = []  # new messages while the history is being sent
        self.last = None  # the key of the last message sent

    def deliver(self, message: Message) -> None:
        if self.early is not None:
            if len(self.early) < self.limit:
                self.early.append(message)
            else:
                self.too_slow()
            return
        key = message.key()
        if self.last is not None and key <= self.last:
            return  # sent already
        self.last = key
        if not self.ws.send_frame_nowait(message.frame(), self.limit):
            self.too_slow()

    def lost(self, after: str) -> None:
        if not self.ws.send_frame_nowait(gap_notice(after), self.limit):
            self.too_slow()

    def too_slow(self) -> None:
        gevent.spawn(self.ws.drop, 1013, "too slow: reconnect with since= to catch up")

    def catch_up(self, history: list[Message], gap: str | None, since: str | None) -> None:
        """Send the gap notice and the history, then what arrived meanwhile, each once."""
        if gap:
            self.ws.send_frame(gap_notice(gap))
        for message in history:
            self.ws.send_frame(message.frame())
        if history:
            self.last = history[-1].key()
        elif gap or since:
            self.last = id_key(gap or since)
        early, self.early = self.early, None
        for message in early:
            self.deliver(message)


def gap_notice(after: str) -> bytes:
    """Some messages after the client's cursor are gone; the history is whole after `after`,
    its new cursor."""
    return text_frame(json.dumps({"gap": True, "cursor": after}))
{%- endif %}


{%- if cookiecutter.use_sse %}


class StreamSubscriber:
    """An event stream in a room: it collects what arrives and wakes the response's greenlet,
    which sends all that is waiting in one write."""

    __slots__ = ("messages", "limit", "gap", "overflowed", "ready")

    def __init__(self, limit: int) -> None:
        self.messages: list[Message] = []
        self.limit = limit
        self.gap: str | None = None
        self.overflowed = False  # a client too slow for `limit` messages: its stream ends
        self.ready = Event()

    def deliver(self, message: Message) -> None:
        if len(self.messages) < self.limit:
            self.messages.append(message)
        else:
            self.overflowed = True
        self.ready.set()

    def lost(self, after: str) -> None:
        self.gap = after
        self.ready.set()

    def take(self) -> tuple[list[Message], str | None]:
        messages, self.messages = self.messages, []
        gap, self.gap = self.gap, None
        self.ready.clear()
        return messages, gap


def gap_event(after: str) -> bytes:
    """Some messages after the client's cursor are gone; the history is whole after `after`,
    which becomes the stream's last event id."""
    return event(json.dumps({"gap": True, "cursor": after}), after, name="gap")
{%- endif %}


def install(app: bottle.Bottle, settings: Settings, broker: Broker | None = None) -> None:
    broker = broker or make_broker(settings)
    addresses = AddressLimits(settings.chat_post_rate, settings.chat_post_burst)

    @app.post(f"/chat/{ROOM}")
    def post(room: str) -> dict:
        wait = addresses.take(client_address(bottle.request.environ, settings.chat_behind_proxy))
        if wait:
            raise bottle.HTTPError(
                429, "too many messages: wait a moment", **{"Retry-After": retry_after(wait)}
            )
        if (bottle.request.content_length or 0) > MAX_BODY:
            bottle.abort(413, f"a message is at most {MAX_BODY} bytes of JSON")
        try:
            text = parse_message(bottle.request.body.read(MAX_BODY + 1), settings.chat_max_text)
            message = broker.publish(room, text)
        except BadMessage as error:
            bottle.abort(error.status, str(error))
        except BrokerUnavailable:
            unavailable("the chat is unavailable for a moment; try again")
        bottle.response.status = 201
        return message
{%- if cookiecutter.use_fetch %}

    @app.get(f"/chat/{ROOM}")
    def poll(room: str) -> dict:
        since = cursor(bottle.request.query.get("since"))
        bottle.response.set_header("Cache-Control", "no-store")
        # Subscribe before reading the history, so that nothing posted in between is missed.
        waiting = PollSubscriber(settings.chat_queue_size, since)
        try:
            broker.subscribe(room, waiting)
            messages, gap = broker.history(room, since)
            if not messages and not gap:
                # Until a message comes, the timeout, or the client leaves (runtime.client_gone).
                wake = [waiting.ready]
                if "runtime.client_gone" in bottle.request.environ:
                    wake.append(bottle.request.environ["runtime.client_gone"].event())
                gevent.wait(wake, timeout=settings.chat_poll_timeout, count=1)
                messages = waiting.messages
                if waiting.gap:
                    messages, gap = broker.history(room, since)
        except BrokerUnavailable:
            unavailable("the chat is unavailable for a moment; poll again")
        finally:
            broker.unsubscribe(room, waiting)
        # The next cursor: past these messages, or past the gap, so that it is reported once.
        last = messages[-1]["id"] if messages else gap or since or "0"
        return {"messages": messages, "cursor": last, "gap": gap is not None}
{%- endif %}
{%- if cookiecutter.use_sse %}

    @app.get(f"/chat/{ROOM}/events")
    def chat_events(room: str) -> Iterator[bytes]:
        request = bottle.request
        since = cursor(request.get_header("Last-Event-ID") or request.query.get("since"))
        # Subscribe before reading the history, so that nothing posted in between is missed.
        listener = StreamSubscriber(settings.chat_queue_size)
        try:
            broker.subscribe(room, listener)
            history, gap = broker.history(room, since)
        except BrokerUnavailable:
            broker.unsubscribe(room, listener)
            unavailable("the chat is unavailable for a moment; reconnect")
        start_event_stream()
        return stream_events(room, listener, history, gap, since)

    def stream_events(
        room: str,
        listener: StreamSubscriber,
        history: list[Message],
        gap: str | None,
        since: str | None,
    ) -> Iterator[bytes]:
        """The room as an event stream: the gap (if any) and the history, then what arrives,
        each message once, and a heartbeat while nothing does. It ends, letting go of the room,
        when the client leaves (a write fails) or reads too slowly (it then reconnects with
        Last-Event-ID and catches up from the history)."""
        try:
            first = [RETRY, gap_event(gap)] if gap else [RETRY]
            first += [message.event() for message in history]
            after = history[-1]["id"] if history else gap or since
            last = id_key(after) if after else None
            yield b"".join(first)
            while not listener.overflowed:
                if not listener.ready.wait(settings.sse_heartbeat):
                    yield HEARTBEAT  # to a client that has gone, this write fails
                    continue
                messages, lost = listener.take()
                events = [gap_event(lost)] if lost else []
                for message in messages:
                    if last is None or message.key() > last:
                        events.append(message.event())
                        last = message.key()
                if events:
                    yield b"".join(events)
        finally:
            broker.unsubscribe(room, listener)
{%- endif %}
{%- if cookiecutter.use_websocket %}

    @websocket_route(app, f"/chat/{ROOM}/ws")
    def chat_socket(ws: WebSocket, room: str) -> None:
        try:
            since = parse_cursor(query_value(ws.environ, "since"))
        except ValueError as error:
            ws.close(1008, str(error))  # 1008: policy violation
            return
        listener = SocketSubscriber(ws, settings.chat_queue_size)
        try:
            broker.subscribe(room, listener)
            listener.catch_up(*broker.history(room, since), since)
        except BrokerUnavailable:
            broker.unsubscribe(room, listener)
            ws.close(1013, "the chat is unavailable for a moment")  # 1013: try again later
            return
        own = None  # this connection's rate limit, made once it posts: most sockets only listen
        try:
            # receive() returns None once the client has gone, or after the server closed.
            while (raw := ws.receive()) is not None:
                own = own or TokenBucket(settings.chat_post_rate, settings.chat_post_burst)
                address = client_address(ws.environ, settings.chat_behind_proxy)
                if own.take() or addresses.take(address):
                    ws.close(1008, "too many messages: slow down")
                    continue
                try:
                    broker.publish(room, parse_message(raw, settings.chat_max_text))
                except BadMessage as error:
                    ws.close(error.close_code, str(error))
                except BrokerUnavailable:
                    ws.send(json.dumps({"error": "the chat is unavailable for a moment"}))
                gevent.sleep(0)  # let the others' writes run between the messages of a burst
        finally:
            broker.unsubscribe(room, listener)


def query_value(environ: dict, name: str) -> str | None:
    """The last value of `name` in the request's query string, or None."""
    values = parse_qs(environ.get("QUERY_STRING", "")).get(name)
    return values[-1] if values else None
{%- endif %}

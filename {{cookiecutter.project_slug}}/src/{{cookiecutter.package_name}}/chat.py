"""Chat rooms: the primer's motivating example, a chat that long-polls, held by greenlets.

{%- if cookiecutter.use_fetch %}
GET  /chat/<room>?since=<id>  long poll: returns at once if messages after `since` exist,
                              else waits up to chat_poll_timeout for the next ones
{%- endif %}
POST /chat/<room>             sends {"text": "..."}; answers 201 with the stored message
{%- if cookiecutter.use_websocket %}
GET  /chat/<room>/ws?since=<id>  WebSocket: history after `since`, then every new message;
                                 send {"text": "..."} to post
{%- endif %}

Every client sees the same messages in the same order: ids increase by one per room.
"""

import json
{%- if cookiecutter.use_websocket %}
from urllib.parse import parse_qs
{%- endif %}

import bottle
{%- if cookiecutter.use_websocket %}
import gevent
{%- endif %}
{%- if cookiecutter.use_fetch %}
from gevent.queue import Empty
{%- endif %}
{%- if cookiecutter.use_websocket %}
from geventwebsocket.exceptions import WebSocketError
{%- endif %}

from .chat_broker import Broker, BrokerUnavailable, SlowConsumer, make_broker
{%- if cookiecutter.use_websocket %}
from .runtime.routing import websocket_route
from .runtime.websocket import WebSocket
{%- endif %}
from .settings import Settings

ROOM = "<room:re:[A-Za-z0-9_-]{1,64}>"
MAX_BODY = 64 * 1024  # bytes of JSON accepted for one POST, before even parsing it


class BadMessage(ValueError):
    """What a client sent is not a chat message; `status` and `close_code` say how to answer."""

    def __init__(self, reason: str, status: int = 400, close_code: int = 1007) -> None:
        super().__init__(reason)
        self.status = status
        self.close_code = close_code


def parse_message(raw: str | bytes, max_text: int) -> str:
    """The text of a {"text": "..."} message, or BadMessage."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadMessage('send JSON such as {"text": "hello"}') from None
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise BadMessage('"text" must be a non-empty string')
    if len(text) > max_text:
        raise BadMessage(f'"text" is longer than {max_text} characters', 413, 1009)
    return text


def parse_since(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    if not raw.isdigit():
        bottle.abort(400, "since must be the id of the last message you have, e.g. since=0")
    return int(raw)


def unavailable(reason: str) -> None:
    """503 with Retry-After: the broker is away (e.g. Redis restarting), the client retries."""
    raise bottle.HTTPError(503, reason, **{"Retry-After": "1"})


def install(app: bottle.Bottle, settings: Settings, broker: Broker | None = None) -> None:
    broker = broker or make_broker(settings)

    @app.post(f"/chat/{ROOM}")
    def post(room: str) -> dict:
        if (bottle.request.content_length or 0) > MAX_BODY:
            bottle.abort(413, f"the request body is larger than {MAX_BODY} bytes")
        try:
            text = parse_message(bottle.request.body.read(MAX_BODY), settings.chat_max_text)
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
        since = parse_since(bottle.request.query.get("since"))
        bottle.response.set_header("Cache-Control", "no-store")
        # Subscribe before reading the history, so a message posted in between is not missed;
        # the cursor drops any message seen twice.
        subscription = None
        try:
            subscription = broker.subscribe(room)
            messages = broker.history(room, since)
            if not messages:
                try:
                    messages = [subscription.get(timeout=settings.chat_poll_timeout)]
                    while not subscription.queue.empty():
                        messages.append(subscription.get())
                except (Empty, SlowConsumer):
                    messages = broker.history(room, since)
        except BrokerUnavailable:
            unavailable("the chat is unavailable for a moment; poll again")
        finally:
            if subscription is not None:
                broker.unsubscribe(subscription)
        messages = [m for m in messages if m["id"] > since]
        return {"messages": messages, "cursor": messages[-1]["id"] if messages else since}
{%- endif %}
{%- if cookiecutter.use_websocket %}

    @websocket_route(app, f"/chat/{ROOM}/ws")
    def chat_socket(ws: WebSocket, room: str) -> None:
        query = parse_qs(ws.environ.get("QUERY_STRING", ""))
        try:
            since = parse_since(query.get("since", [None])[-1])
        except bottle.HTTPError as error:
            ws.close(1008, error.body)  # 1008: policy violation
            return
        # A client too slow for its queue is dropped; it reconnects with ?since= to catch up.
        try:
            subscription = broker.subscribe(room, on_overflow=lambda: ws.abort(1013, "too slow"))
        except BrokerUnavailable:
            ws.close(1013, "the chat is unavailable for a moment")  # 1013: try again later
            return
        sender = gevent.spawn(forward, subscription, ws, room, since)
        try:
            while (raw := ws.receive()) is not None:
                try:
                    broker.publish(room, parse_message(raw, settings.chat_max_text))
                except BadMessage as error:
                    ws.close(error.close_code, str(error))
                except BrokerUnavailable:
                    ws.send(json.dumps({"error": "the chat is unavailable for a moment"}))
        finally:
            sender.kill()
            broker.unsubscribe(subscription)

    def forward(subscription, ws, room: str, since: int) -> None:
        """History after `since`, then new messages, each exactly once and in id order."""
        try:
            for message in broker.history(room, since):
                ws.send(message.to_json())
                since = message["id"]
            while True:
                message = subscription.get()
                if message["id"] > since:
                    ws.send(message.to_json())
                    since = message["id"]
        except BrokerUnavailable:
            ws.abort(1011, "chat unavailable")
        except (SlowConsumer, WebSocketError):
            pass  # dropped, or the client left: the route cleans up
{%- endif %}

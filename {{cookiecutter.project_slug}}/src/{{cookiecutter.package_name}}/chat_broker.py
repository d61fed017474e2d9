"""Chat rooms in one process: message ids, bounded history, and fan-out to subscribers.

A message is {"id", "room", "text", "ts"}. Its id, "<milliseconds>-<sequence>" as in Redis
streams, follows the clock: ids increase within a room, also across restarts of the server,
so a client's cursor (the last id it has) never points past messages posted later. Clients
treat ids as opaque and give back the last one they have: `history(room, since)` is what came
after it, and says when part of that is gone (trimmed, or lost with a restart) instead of
leaving a silent hole.
{%- if cookiecutter.broker == "redis" %}
chat_redis.py implements the same interface across processes with Redis streams.
{%- endif %}
"""

import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from .runtime.websocket import text_frame
from .settings import Settings
{%- if cookiecutter.use_sse %}
from .sse import event
{%- endif %}

# A cursor: "0" (from the start), or an id, "<milliseconds>-<sequence>"; bounded, so that
# checking one costs nothing whatever a client sends.
CURSOR = re.compile(r"0|[0-9]{1,15}-[0-9]{1,20}")
# The largest sequence an id can have: the end of a millisecond.
LAST_SEQUENCE = 2**64 - 1

Key = tuple[int, int]  # an id as (milliseconds, sequence), for comparing


def id_key(message_id: str) -> Key:
    milliseconds, _, sequence = message_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def format_id(key: Key) -> str:
    return f"{key[0]}-{key[1]}"


def parse_cursor(raw: str | None) -> str | None:
    """The cursor a client gave (None: it has nothing yet); ValueError if it is not one."""
    if raw is None or raw in ("", "0"):
        return None
    if len(raw) > 40 or not CURSOR.fullmatch(raw):
        raise ValueError("since must be the id of the last message you have, e.g. since=1764-0")
    return raw


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def floor_before(milliseconds: int) -> Key:
    """The floor of a room that comes to be at `milliseconds`: after every id it had before
    (an earlier life, lost with a restart or an expiry), before every id it will have."""
    return (milliseconds - 1, LAST_SEQUENCE)


class Message(dict):
    """{"id", "room", "text", "ts"}, with its JSON, its WebSocket frame{% if cookiecutter.use_sse %}, its event{% endif %} and its
    id's key made only once.

    A message goes to every subscriber of its room: encoded once, a broadcast to thousands
    of clients costs one json.dumps and one frame.
    """

    __slots__ = ("_json", "_frame", "_key"{% if cookiecutter.use_sse %}, "_event"{% endif %})

    @classmethod
    def from_json(cls, text: str) -> "Message":
        message = cls(json.loads(text))
        message._json = text
        return message

    def to_json(self) -> str:
        try:
            return self._json
        except AttributeError:
            self._json = json.dumps(self)
            return self._json

    def key(self) -> Key:
        """Its id, for comparing with others."""
        try:
            return self._key
        except AttributeError:
            self._key = id_key(self["id"])
            return self._key

    def frame(self) -> bytes:
        """The message as a WebSocket text frame."""
        try:
            return self._frame
        except AttributeError:
            self._frame = text_frame(self.to_json())
            return self._frame
{%- if cookiecutter.use_sse %}

    def event(self) -> bytes:
        """The message as a Server-Sent Event, its id the event's id."""
        try:
            return self._event
        except AttributeError:
            self._event = event(self.to_json(), self["id"])
            return self._event
{%- endif %}


class BrokerUnavailable(Exception):
    """The broker cannot take messages right now (e.g. Redis is restarting)."""


class TooManyRooms(BrokerUnavailable):
    """Every room the broker may hold has listeners: no room can make way for a new one."""


class Subscriber(Protocol):
    """One client listening to a room: the broker hands it each new message, in id order; a
    message may come twice (a broker catching up after a reconnect), and is then ignored."""

    def deliver(self, message: Message) -> None: ...

    def lost(self, after: str) -> None:
        """Messages may have been missed (the broker lost history); it is whole after `after`."""


class Broker(Protocol):
    def publish(self, room: str, text: str) -> Message: ...

    def history(self, room: str, since: str | None) -> tuple[list[Message], str | None]:
        """The messages after `since` (all kept, if None), and None, or if some of those are
        gone, the id after which the history is whole (the cursor to go on from)."""

    def subscribe(self, room: str, subscriber: Subscriber) -> None: ...

    def unsubscribe(self, room: str, subscriber: Subscriber) -> None: ...


@dataclass
class Room:
    # History is complete after this id: the last one trimmed, or, until then, the floor
    # before the room came to be.
    floor: Key = field(default_factory=lambda: floor_before(now_ms()))
    history: deque = field(default_factory=deque)
    last: Key = (0, 0)
    subscribers: set = field(default_factory=set)

    def next_id(self) -> Key:
        """The clock's millisecond, or the last id's plus one if the clock has not moved on."""
        milliseconds = now_ms()
        if milliseconds > self.last[0]:
            self.last = (milliseconds, 0)
        else:
            self.last = (self.last[0], self.last[1] + 1)
        return self.last


class MemoryBroker:
    """Rooms held in this process: no dependencies, but one process only, and a restart loses
    the history (clients are told: ids stay in order, and `history` reports the gap).

    At most `max_rooms` rooms are kept. A new room replaces the least recently used room that
    nobody listens to (no socket, no waiting poll); if every room has listeners, the new one is
    refused with TooManyRooms (503 for HTTP clients, 1013 for sockets).
    """

    def __init__(self, history_size: int, max_rooms: int = 1000) -> None:
        self.history_size = history_size
        self.max_rooms = max_rooms
        self.rooms: dict[str, Room] = {}  # least recently used first

    def _room(self, name: str) -> Room:
        room = self.rooms.pop(name, None)
        if room is None:
            if len(self.rooms) >= self.max_rooms:
                self._forget_an_idle_room()
            room = Room()
        self.rooms[name] = room  # (back) at the most recently used end
        return room

    def _forget_an_idle_room(self) -> None:
        for name, room in self.rooms.items():
            if not room.subscribers:
                del self.rooms[name]
                return
        raise TooManyRooms(f"all {self.max_rooms} chat rooms have listeners")

    def publish(self, room: str, text: str) -> Message:
        state = self._room(room)
        key = state.next_id()
        message = Message(id=format_id(key), room=room, text=text, ts=key[0] / 1000)
        if len(state.history) == self.history_size:
            state.floor = state.history.popleft().key()
        state.history.append(message)
        for subscriber in list(state.subscribers):
            subscriber.deliver(message)
        return message

    def history(self, room: str, since: str | None) -> tuple[list[Message], str | None]:
        state = self.rooms.get(room) or Room()
        if since is None:
            return list(state.history), None
        after = id_key(since)
        messages = [m for m in state.history if m.key() > after]
        return messages, format_id(state.floor) if after < state.floor else None

    def subscribe(self, room: str, subscriber: Subscriber) -> None:
        self._room(room).subscribers.add(subscriber)

    def unsubscribe(self, room: str, subscriber: Subscriber) -> None:
        state = self.rooms.get(room)
        if state is not None:
            state.subscribers.discard(subscriber)


def make_broker(settings: Settings) -> Broker:
{%- if cookiecutter.broker == "redis" %}
    from .chat_redis import RedisBroker

    return RedisBroker(settings.redis_url, settings.chat_history, settings.chat_room_ttl)
{%- else %}
    return MemoryBroker(settings.chat_history, settings.chat_max_rooms)
{%- endif %}

"""Chat rooms in one process: ids, bounded history, and fan-out to subscribers.

Every message is {"id", "room", "text", "ts"}, with ids increasing by one per room. Clients
keep the last id they saw as a cursor, so a poller or a reconnecting socket asks for what came
after it and sees nothing twice and nothing missed (as far back as the history reaches).
{%- if cookiecutter.broker == "redis" %}
chat_redis.py implements the same interface across processes with Redis.
{%- endif %}
"""

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import gevent
from gevent.queue import Full, Queue

from .settings import Settings


class Message(dict):
    """{"id": int, "room": str, "text": str, "ts": float}, with its JSON made only once.

    A message goes to every subscriber of its room: encoded once rather than once per
    WebSocket, a broadcast to thousands of sockets costs one json.dumps.
    """

    __slots__ = ("_json",)

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


class BrokerUnavailable(Exception):
    """The broker cannot take messages right now (e.g. Redis is restarting)."""


class TooManyRooms(BrokerUnavailable):
    """Every room the broker may hold has listeners: no room can make way for a new one."""


class SlowConsumer(Exception):
    """The subscriber fell more than its queue behind and was dropped."""


class Subscription:
    """One client's view of a room: a bounded queue of new messages.

    A client that reads slower than the room talks fills its queue; it is then dropped
    (`on_overflow` runs, get() raises SlowConsumer) instead of holding memory without bound.
    It catches up from the history when it comes back with its cursor.
    """

    def __init__(self, room: str, maxsize: int, on_overflow: Callable[[], None] | None) -> None:
        self.room = room
        self.queue: Queue = Queue(maxsize)
        self.on_overflow = on_overflow
        self.overflowed = False

    def deliver(self, message: Message) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(message)
        except Full:
            self.overflowed = True
            if self.on_overflow is not None:
                gevent.spawn(self.on_overflow)

    def get(self, timeout: float | None = None) -> Message:
        """The next message; raises gevent.queue.Empty after `timeout`, SlowConsumer if dropped."""
        if self.overflowed:
            raise SlowConsumer
        return self.queue.get(timeout=timeout)


class Broker(Protocol):
    def publish(self, room: str, text: str) -> Message: ...
    def history(self, room: str, since: int) -> list[Message]: ...
    def subscribe(
        self, room: str, on_overflow: Callable[[], None] | None = None
    ) -> Subscription: ...
    def unsubscribe(self, subscription: Subscription) -> None: ...


@dataclass
class Room:
    history: deque
    last_id: int = 0
    subscribers: set[Subscription] = field(default_factory=set)


class MemoryBroker:
    """Rooms held in this process: no dependencies, but one process only.

    At most `max_rooms` rooms are kept. A new room replaces the least recently used room that
    has no subscribers (its history goes with it); if every room has subscribers, the new one
    is refused with TooManyRooms (503 for HTTP clients).
    """

    def __init__(self, history_size: int, queue_size: int, max_rooms: int = 1000) -> None:
        self.history_size = history_size
        self.queue_size = queue_size
        self.max_rooms = max_rooms
        self.rooms: dict[str, Room] = {}  # least recently used first

    def _room(self, name: str) -> Room:
        room = self.rooms.pop(name, None)
        if room is None:
            if len(self.rooms) >= self.max_rooms:
                self._forget_an_idle_room()
            room = Room(history=deque(maxlen=self.history_size))
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
        state.last_id += 1
        message = Message(id=state.last_id, room=room, text=text, ts=round(time.time(), 3))
        state.history.append(message)
        for subscription in list(state.subscribers):
            subscription.deliver(message)
        return message

    def history(self, room: str, since: int) -> list[Message]:
        state = self.rooms.get(room)
        return [m for m in state.history if m["id"] > since] if state else []

    def subscribe(self, room: str, on_overflow: Callable[[], None] | None = None) -> Subscription:
        subscription = Subscription(room, self.queue_size, on_overflow)
        self._room(room).subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        state = self.rooms.get(subscription.room)
        if state is not None:
            state.subscribers.discard(subscription)


def make_broker(settings: Settings) -> Broker:
{%- if cookiecutter.broker == "redis" %}
    from .chat_redis import RedisBroker

    return RedisBroker(settings.redis_url, settings.chat_history, settings.chat_queue_size)
{%- else %}
    return MemoryBroker(settings.chat_history, settings.chat_queue_size, settings.chat_max_rooms)
{%- endif %}

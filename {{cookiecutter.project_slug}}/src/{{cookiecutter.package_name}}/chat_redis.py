"""Chat rooms across processes and hosts: Redis keeps ids and history and fans messages out.

Each process holds one pub/sub connection and hands messages to its own subscribers, so a
message posted to any process reaches every client of every process, in id order. When Redis
goes away the process keeps its clients, reconnects with backoff, and delivers what was
published meanwhile from the history. Run Redis with persistence (appendonly yes) so ids
survive its restarts.
"""

import json
import logging
import time
from collections.abc import Callable

import gevent
import redis

from .chat_broker import BrokerUnavailable, Message, Subscription

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "chat-messages:"
# Atomic in Redis: the next id, the history entry and the publication happen in one step, so
# every process sees messages in id order.
PUBLISH_SCRIPT = """
local id = redis.call('INCR', KEYS[1])
local message = '{"id": ' .. id .. ', ' .. ARGV[1]
redis.call('RPUSH', KEYS[2], message)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PUBLISH', KEYS[3], message)
return message
"""


def keys(room: str) -> list[str]:
    return [f"chat:{room}:last-id", f"chat:{room}:history", CHANNEL_PREFIX + room]


class RedisBroker:
    def __init__(self, url: str, history_size: int, queue_size: int) -> None:
        self.history_size = history_size
        self.queue_size = queue_size
        # Commands fail fast while Redis is away; the pub/sub connection waits without a timeout.
        self.redis = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, decode_responses=True
        )
        self.pubsub_redis = redis.Redis.from_url(
            url, socket_connect_timeout=2, decode_responses=True
        )
        self._publish = self.redis.register_script(PUBLISH_SCRIPT)
        self.local: dict[str, set[Subscription]] = {}
        self.delivered: dict[str, int] = {}  # last id handed to this process's subscribers
        self._listener: gevent.Greenlet | None = None

    def publish(self, room: str, text: str) -> Message:
        # The message's JSON after its id: Lua joins the two without re-encoding the text.
        rest = json.dumps({"room": room, "text": text, "ts": round(time.time(), 3)})[1:]
        try:
            return Message.from_json(self._publish(keys=keys(room), args=[rest, self.history_size]))
        except redis.RedisError as error:
            raise BrokerUnavailable(str(error)) from error

    def history(self, room: str, since: int) -> list[Message]:
        try:
            entries = self.redis.lrange(keys(room)[1], 0, -1)
        except redis.RedisError as error:
            raise BrokerUnavailable(str(error)) from error
        return [m for m in map(Message.from_json, entries) if m["id"] > since]

    def subscribe(self, room: str, on_overflow: Callable[[], None] | None = None) -> Subscription:
        if room not in self.delivered:
            # The subscriber reads the history up to now itself: the catch-up after (re)connecting
            # must replay only what comes later, not the whole history into a new subscriber.
            try:
                self.delivered[room] = int(self.redis.get(keys(room)[0]) or 0)
            except redis.RedisError as error:
                raise BrokerUnavailable(str(error)) from error
        if self._listener is None or self._listener.dead:
            self._listener = gevent.spawn(self._listen)
        subscription = Subscription(room, self.queue_size, on_overflow)
        self.local.setdefault(room, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self.local.get(subscription.room, set())
        subscribers.discard(subscription)
        if not subscribers:
            self.local.pop(subscription.room, None)
            self.delivered.pop(subscription.room, None)

    def _listened(self, channel: str) -> bool:
        return channel.removeprefix(CHANNEL_PREFIX) in self.local

    def _dispatch(self, message: Message) -> None:
        room = message["room"]
        if room not in self.local or message["id"] <= self.delivered.get(room, 0):
            return  # nobody here listens, or already delivered during a catch-up
        self.delivered[room] = message["id"]
        for subscription in list(self.local.get(room, ())):
            subscription.deliver(message)

    def _catch_up(self) -> None:
        """After (re)connecting: deliver what was published while we were not listening."""
        for room in list(self.local):
            last_id = int(self.redis.get(keys(room)[0]) or 0)
            if last_id < self.delivered.get(room, 0):
                log.warning("chat room %r: Redis lost its ids (restart without persistence?)", room)
                self.delivered[room] = last_id
            for message in self.history(room, self.delivered.get(room, 0)):
                self._dispatch(message)

    def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.pubsub_redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(CHANNEL_PREFIX + "*")
                self._catch_up()
                if delay > 0.1:
                    log.info("chat: reconnected to Redis")
                delay = 0.1
                while True:
                    item = pubsub.get_message(timeout=1.0)
                    # Every room's messages arrive here: parse only those of rooms listened to.
                    if item and item["type"] == "pmessage" and self._listened(item["channel"]):
                        self._dispatch(Message.from_json(item["data"]))
            except (redis.RedisError, BrokerUnavailable, OSError) as error:
                log.warning("chat: Redis unavailable (%s); retrying in %.1f s", error, delay)
                gevent.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                pubsub.close()

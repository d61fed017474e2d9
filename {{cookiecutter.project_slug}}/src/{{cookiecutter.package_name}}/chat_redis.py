"""Chat rooms across processes and hosts: a Redis stream per room holds ids and history, and
pub/sub wakes every process when a message is added.

Stream ids follow Redis' clock, so they keep increasing when Redis restarts without
persistence or a room expires: a client's cursor never points past newer messages. Each process
holds one pub/sub connection and hands messages to its own subscribers, so a message posted to
any process reaches every client of every process, in id order. When Redis goes away the
process keeps its clients, reconnects with backoff, and delivers what was added meanwhile from
the stream; if history was lost meanwhile (Redis restarted empty), its clients are told.
"""

import json
import logging
import time

import gevent
import redis

from .chat_broker import (
    LAST_SEQUENCE,
    BrokerUnavailable,
    Message,
    Subscriber,
    floor_before,
    format_id,
    id_key,
)

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "chat-messages:"
# Atomic in Redis: the room's floor (its history is whole after this id), the stream entry with
# its id, the expiry of both, and the publication happen in one step, so every process sees
# messages in id order. The floor of a new stream is just before it came to be; when the stream
# is full, it is the id of the entry about to be trimmed.
PUBLISH_SCRIPT = """
local stream, floor = KEYS[1], KEYS[2]
local rest, maxlen, ttl, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local length = redis.call('XLEN', stream)
if length == 0 then
  local now = redis.call('TIME')
  redis.call('SET', floor, (now[1] * 1000 + math.floor(now[2] / 1000) - 1) .. '-' .. ARGV[5])
elseif length >= maxlen then
  local trimmed = redis.call('XRANGE', stream, '-', '+', 'COUNT', length - maxlen + 1)
  redis.call('SET', floor, trimmed[#trimmed][1])
end
local id = redis.call('XADD', stream, 'MAXLEN', maxlen, '*', 'm', rest)
redis.call('EXPIRE', stream, ttl)
redis.call('EXPIRE', floor, ttl)
local message = '{"id": "' .. id .. '", ' .. rest
redis.call('PUBLISH', channel, message)
return message
"""


def keys(room: str) -> list[str]:
    return [f"chat:{room}", f"chat:{room}:floor"]


def entry_message(entry: tuple[str, dict]) -> Message:
    """A stream entry (id, {"m": the message's JSON after its id}) as a Message."""
    entry_id, fields = entry
    return Message.from_json('{"id": "' + entry_id + '", ' + fields["m"])


class RedisBroker:
    def __init__(self, url: str, history_size: int, room_ttl: int) -> None:
        self.history_size = history_size
        self.room_ttl = room_ttl
        # Commands fail fast while Redis is away; the pub/sub connection waits without a timeout.
        self.redis = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, decode_responses=True
        )
        self.pubsub_redis = redis.Redis.from_url(
            url, socket_connect_timeout=2, decode_responses=True
        )
        self._publish = self.redis.register_script(PUBLISH_SCRIPT)
        self.local: dict[str, set[Subscriber]] = {}
        # The last id handed to this process's subscribers of each room (None: none yet).
        self.delivered: dict[str, str | None] = {}
        self._listener: gevent.Greenlet | None = None

    def publish(self, room: str, text: str) -> Message:
        # The message's JSON after its id: Lua joins the two without re-encoding the text.
        rest = json.dumps({"room": room, "text": text, "ts": round(time.time(), 3)})[1:]
        args = [rest, self.history_size, self.room_ttl, CHANNEL_PREFIX + room, LAST_SEQUENCE]
        try:
            return Message.from_json(self._publish(keys=keys(room), args=args))
        except redis.RedisError as error:
            raise BrokerUnavailable(str(error)) from error

    def history(self, room: str, since: str | None) -> tuple[list[Message], str | None]:
        stream, floor_key = keys(room)
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.xrange(stream, f"({since}" if since else "-", "+")
                pipe.get(floor_key)
                pipe.time()
                entries, floor, (seconds, micros) = pipe.execute()
        except redis.RedisError as error:
            raise BrokerUnavailable(str(error)) from error
        messages = [entry_message(entry) for entry in entries]
        if since is None:
            return messages, None
        if floor is None:  # no stream: Redis lost it, or it expired; its ids came before now
            floor = format_id(floor_before(seconds * 1000 + micros // 1000))
        return messages, floor if id_key(since) < id_key(floor) else None

    def subscribe(self, room: str, subscriber: Subscriber) -> None:
        if room not in self.local:
            # Its subscribers read the history up to now themselves: the listener's catch-up
            # after (re)connecting need only deliver what comes later.
            try:
                last = self.redis.xrevrange(keys(room)[0], "+", "-", count=1)
            except redis.RedisError as error:
                raise BrokerUnavailable(str(error)) from error
            position = last[0][0] if last else None
            # Another subscriber may have set the room up meanwhile: keep the earlier position
            # (a message may then come twice, which subscribers ignore; none is lost).
            current = self.delivered.get(room, position)
            if position is None or (current is not None and id_key(position) < id_key(current)):
                current = position
            self.delivered[room] = current
        if self._listener is None or self._listener.dead:
            self._listener = gevent.spawn(self._listen)
        self.local.setdefault(room, set()).add(subscriber)

    def unsubscribe(self, room: str, subscriber: Subscriber) -> None:
        subscribers = self.local.get(room, set())
        subscribers.discard(subscriber)
        if not subscribers:
            self.local.pop(room, None)
            self.delivered.pop(room, None)

    def _listened(self, channel: str) -> bool:
        return channel.removeprefix(CHANNEL_PREFIX) in self.local

    def _dispatch(self, message: Message) -> None:
        room = message["room"]
        if room not in self.local:
            return  # nobody here listens
        delivered = self.delivered[room]
        if delivered is not None and message.key() <= id_key(delivered):
            return  # delivered already, during a catch-up
        self.delivered[room] = message["id"]
        for subscriber in list(self.local[room]):
            subscriber.deliver(message)

    def _catch_up(self) -> None:
        """After (re)connecting: deliver what was added while we were not listening."""
        for room in list(self.local):
            messages, gap = self.history(room, self.delivered[room])
            if gap is not None:
                log.warning(
                    "chat room %r: Redis lost messages (restart without persistence?)", room
                )
                self.delivered[room] = gap
                for subscriber in list(self.local.get(room, ())):
                    subscriber.lost(gap)
            for message in messages:
                self._dispatch(message)

    def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.pubsub_redis.pubsub()
            try:
                pubsub.psubscribe(CHANNEL_PREFIX + "*")
                # Redis confirms the subscription only once it is in effect: catching up any
                # earlier would miss what is published in between.
                confirmed = time.monotonic() + 5
                while (item := pubsub.get_message(timeout=1.0)) is None or item[
                    "type"
                ] != "psubscribe":
                    if time.monotonic() > confirmed:
                        raise redis.TimeoutError("Redis did not confirm the subscription")
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

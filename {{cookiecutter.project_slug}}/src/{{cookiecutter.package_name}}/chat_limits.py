"""Fair sharing for the chat: how fast one client may post, and how big and deep a message is.

Posts are limited with token buckets, one per connection and one per client address: a client
may send `burst` messages at once, then `rate` a second. A loud client is slowed down (HTTP
429) or closed (WebSocket 1008); the others in its room never notice.
"""

import math
import re
import time
from collections import OrderedDict


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Take a token: 0 if there was one, else the seconds until there will be."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class AddressLimits:
    """A token bucket per client address. A bucket that has refilled is the same as a new one,
    so buckets are forgotten, oldest first, once there are `max_clients` of them."""

    def __init__(self, rate: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, address: str) -> float:
        bucket = self.buckets.pop(address, None) or TokenBucket(self.rate, self.burst)
        self.buckets[address] = bucket  # most recently used last
        if len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return bucket.take()


def retry_after(wait: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))


def client_address(environ: dict, behind_proxy: bool) -> str:
    """The client's address: the peer's, or behind a trusted proxy the last one it added to
    X-Forwarded-For (nginx's $proxy_add_x_forwarded_for appends the address it saw)."""
    if behind_proxy:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "").rpartition(",")[2].strip()
        if forwarded:
            return forwarded
    return environ.get("REMOTE_ADDR", "")


# Where JSON nests: brackets, and the quotes and escapes that say whether they are in a string.
STRUCTURE = re.compile(r'[\[\]{}"\\]')


def nesting_exceeds(raw: str, limit: int) -> bool:
    """True if the JSON text `raw` nests arrays and objects deeper than `limit`.

    Checked before parsing: json.loads recurses once per level, so deep nesting costs stack
    (and ends in RecursionError) before any check on the result could run. One pass over the
    characters that matter, in time proportional to the text.
    """
    depth = 0
    in_string = False
    escaped = -1  # the position an escape covers
    for match in STRUCTURE.finditer(raw):
        char, at = match.group(), match.start()
        if at == escaped:
            continue
        if char == "\\":
            escaped = at + 1
        elif char == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False

"""The app's settings: the server's (runtime/settings.py) plus those of its features.

Every field can be set with an environment variable named after it, e.g.
{{ cookiecutter.package_name | upper }}_PORT=9000 sets `port`. Command-line flags win over them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .runtime.settings import ServerSettings, SettingsError

__all__ = ["Settings", "SettingsError"]


@dataclass(frozen=True)
class Settings(ServerSettings):
    env_prefix = "{{ cookiecutter.package_name | upper }}_"
{%- if cookiecutter.broker == "redis" %}
    env_aliases = {"redis_url": "REDIS_URL"}
{%- endif %}

    port: int = {{ cookiecutter.port }}
    # Adds greenlet, file and memory counts to /healthz; off because it costs a heap scan.
    expose_stats: bool = False
{%- if cookiecutter.use_stream or cookiecutter.use_sse %}
    # The pauses of the primer's stream: START, first pause, MIDDLE, second pause, END.
    stream_delays: tuple[float, ...] = (3.0, 5.0)
{%- endif %}
{%- if cookiecutter.use_sse %}
    # Seconds an event stream may stay quiet before it gets a heartbeat comment: it keeps
    # proxies from closing the stream, and a client that has gone is noticed at the latest then.
    sse_heartbeat: float = 15.0
{%- endif %}
{%- if cookiecutter.use_fetch %}
    # The demo worker behind /fetch: how many chunks, how far apart, and how many may wait unsent.
    fetch_chunks: int = 5
    fetch_interval: float = 1.0
    fetch_queue_size: int = 16
{%- endif %}
{%- if cookiecutter.use_chat %}
    # Chat: messages kept per room for late joiners and pollers, the longest message text, how
    # long a long poll waits, and how many messages may queue for one slow client before it
    # is dropped (it then catches up from the history).
    chat_history: int = 100
    chat_max_text: int = 2000
    chat_poll_timeout: float = 25.0
    chat_queue_size: int = 256
    # Posts one client may make: a burst at once, then this many a second, per connection and
    # per address. Behind a proxy, the address is the last one it adds to X-Forwarded-For.
    chat_post_rate: float = 5.0
    chat_post_burst: int = 20
    chat_behind_proxy: bool = False
{%- endif %}
{%- if cookiecutter.use_chat and cookiecutter.broker == "memory" %}
    # Rooms kept in memory: past this, a new room replaces the least recently used one that
    # nobody is listening to, so clients cannot grow memory by inventing room names.
    chat_max_rooms: int = 1000
{%- endif %}
{%- if cookiecutter.broker == "redis" %}
    # The Redis that carries chat messages between processes; REDIS_URL works too.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Seconds a room may stay quiet before Redis forgets it (7 days); cursors stay valid.
    chat_room_ttl: int = 604_800
{%- endif %}

    def __post_init__(self) -> None:
        super().__post_init__()
{%- if cookiecutter.use_stream or cookiecutter.use_sse %}
        if len(self.stream_delays) != 2 or min(self.stream_delays) < 0:
            raise SettingsError("stream_delays: give two pauses of 0 or more seconds, e.g. 3,5")
{%- endif %}
{%- if cookiecutter.use_sse %}
        self.require("sse_heartbeat", self.sse_heartbeat > 0, "more than 0 seconds")
{%- endif %}
{%- if cookiecutter.use_fetch %}
        self.require("fetch_chunks", self.fetch_chunks >= 1, "at least 1")
        self.require("fetch_interval", self.fetch_interval >= 0, "0 or more seconds")
        self.require("fetch_queue_size", self.fetch_queue_size >= 1, "at least 1")
{%- endif %}
{%- if cookiecutter.use_chat %}
        for name in ("chat_history", "chat_max_text", "chat_queue_size", "chat_post_burst"):
            self.require(name, getattr(self, name) >= 1, "at least 1")
        self.require("chat_poll_timeout", self.chat_poll_timeout > 0, "more than 0 seconds")
        self.require("chat_post_rate", self.chat_post_rate > 0, "more than 0 a second")
{%- endif %}
{%- if cookiecutter.use_chat and cookiecutter.broker == "memory" %}
        self.require("chat_max_rooms", self.chat_max_rooms >= 1, "at least 1")
{%- endif %}
{%- if cookiecutter.broker == "redis" %}
        self.require("chat_room_ttl", self.chat_room_ttl >= 1, "at least 1 second")
{%- endif %}

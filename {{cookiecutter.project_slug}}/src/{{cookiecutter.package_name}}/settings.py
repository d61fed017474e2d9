"""Runtime settings: one frozen dataclass, read from environment variables and command-line flags.

Every field can be set with an environment variable named after it, e.g.
{{ cookiecutter.package_name | upper }}_PORT=9000 sets `port`. Flags given to `python -m {{ cookiecutter.package_name }}` win.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

ENV_PREFIX = "{{ cookiecutter.package_name | upper }}_"
# Conventional names that some settings are also read from; the prefixed name wins.
ENV_ALIASES: dict[str, str] = {
{%- if cookiecutter.broker == "redis" %}"redis_url": "REDIS_URL"{% endif -%}
}


class SettingsError(ValueError):
    """A setting has a value the app cannot use; the message names the setting and the fix."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    # 0 asks the OS for a free port (the server logs the one it got).
    port: int = {{ cookiecutter.port }}
    log_level: str = "INFO"
    # Seconds that open requests get to finish after SIGTERM or Ctrl-C.
    shutdown_timeout: float = 5.0
    # Concurrent connections, long-lived ones included; further clients wait to be accepted.
    max_connections: int = 10_000
    # Connections the kernel queues until the server accepts them: a burst larger than this
    # makes clients retry after a second or more.
    listen_backlog: int = 2048
    # Seconds a client gets to send a request line and headers (slowloris defence); also how
    # long an idle kept-alive connection stays open.
    header_timeout: float = 10.0
    # Adds greenlet, file and memory counts to /healthz; off because it costs a heap scan.
    expose_stats: bool = False
{%- if cookiecutter.use_stream %}
    # The pauses of /stream: START, first pause, MIDDLE, second pause, END.
    stream_delays: tuple[float, ...] = (3.0, 5.0)
{%- endif %}
{%- if cookiecutter.use_websocket %}
    # Largest WebSocket message accepted, in bytes; a larger one is refused with close 1009.
    max_message_size: int = 1_048_576
    # Seconds of silence before the server pings, and before an unanswered ping drops the
    # connection; 0 turns pings off.
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    # Origins allowed to open WebSockets, e.g. https://example.com; empty means the page's own
    # host only, "*" any (cross-site WebSocket hijacking defence).
    allowed_origins: tuple[str, ...] = ()
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
{%- endif %}
{%- if cookiecutter.use_chat and cookiecutter.broker == "memory" %}
    # Rooms kept in memory: past this, a new room replaces the least recently used one that
    # nobody is listening to, so clients cannot grow memory by inventing room names.
    chat_max_rooms: int = 1000
{%- endif %}
{%- if cookiecutter.broker == "redis" %}
    # The Redis that carries chat messages between processes; REDIS_URL works too.
    redis_url: str = "redis://127.0.0.1:6379/0"
{%- endif %}

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port: {self.port} is not a TCP port; use 0-65535")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise SettingsError(
                f"log_level: {self.log_level!r} is not a level; use DEBUG, INFO, WARNING or ERROR"
            )
        if self.shutdown_timeout < 0:
            raise SettingsError("shutdown_timeout: must be 0 or more seconds")
        if self.max_connections < 1 or self.listen_backlog < 1:
            raise SettingsError("max_connections and listen_backlog: must be at least 1")
        if self.header_timeout <= 0:
            raise SettingsError("header_timeout: must be more than 0 seconds")
{%- if cookiecutter.use_stream %}
        if len(self.stream_delays) != 2 or min(self.stream_delays) < 0:
            raise SettingsError("stream_delays: give two pauses of 0 or more seconds, e.g. 3,5")
{%- endif %}
{%- if cookiecutter.use_websocket %}
        if self.max_message_size < 125:
            raise SettingsError("max_message_size: must be at least 125 bytes")
        if self.ping_interval < 0 or self.ping_timeout <= 0:
            raise SettingsError("ping_interval: 0 or more seconds; ping_timeout: more than 0")
{%- endif %}
{%- if cookiecutter.use_chat %}
        if min(self.chat_history, self.chat_max_text, self.chat_queue_size) < 1:
            raise SettingsError("chat_history, chat_max_text and chat_queue_size: at least 1")
        if self.chat_poll_timeout <= 0:
            raise SettingsError("chat_poll_timeout: must be more than 0 seconds")
{%- endif %}
{%- if cookiecutter.use_chat and cookiecutter.broker == "memory" %}
        if self.chat_max_rooms < 1:
            raise SettingsError("chat_max_rooms: at least 1")
{%- endif %}
{%- if cookiecutter.use_fetch %}
        if self.fetch_chunks < 1 or self.fetch_interval < 0 or self.fetch_queue_size < 1:
            raise SettingsError(
                "fetch_chunks and fetch_queue_size must be at least 1, "
                "fetch_interval 0 or more seconds"
            )
{%- endif %}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: object) -> Settings:
        """Settings from `{{ cookiecutter.package_name | upper }}_*` variables, then from `overrides` (flags)."""
        values: dict[str, object] = {}
        for field in fields(cls):
            name = ENV_PREFIX + field.name.upper()
            alias = ENV_ALIASES.get(field.name)
            if name not in environ and alias and alias in environ:
                name = alias
            if name in environ:
                values[field.name] = _parse(name, environ[name], field.type)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings (for a subprocess)."""
        return {ENV_PREFIX + f.name.upper(): _format(getattr(self, f.name)) for f in fields(self)}


# Field types are strings here (postponed annotations): map each to a parser and a hint.
_PARSERS = {
    "str": (str, "text"),
    "bool": (lambda raw: _BOOLEANS[raw.lower()], "true or false"),
    "int": (int, "a whole number"),
    "float": (float, "a number"),
    "tuple[float, ...]": (
        lambda raw: tuple(map(float, raw.split(","))),
        "numbers separated by ','",
    ),
    "tuple[str, ...]": (
        lambda raw: tuple(part.strip() for part in raw.split(",") if part.strip()),
        "values separated by ','",
    ),
}
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True}
_BOOLEANS.update({"0": False, "false": False, "no": False, "off": False})


def _parse(name: str, raw: str, type_name: str) -> object:
    parser, expected = _PARSERS[type_name]
    try:
        return parser(raw.strip())
    except (ValueError, KeyError):
        raise SettingsError(f"{name}={raw!r}: expected {expected}") from None


def _format(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(part) for part in value)
    return str(value)

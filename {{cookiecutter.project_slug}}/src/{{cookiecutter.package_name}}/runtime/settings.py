"""The server's settings: one frozen dataclass, read from environment variables and flags.

The app's own `Settings` (settings.py, one level up) subclasses `ServerSettings`, adds the
fields of its features and names the prefix of its environment variables; every field can then
be set with `<PREFIX><FIELD>`, e.g. MY_APP_PORT=9000.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields

T = typing.TypeVar("T", bound="ServerSettings")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A setting has a value the app cannot use; the message names the setting and the fix."""


@dataclass(frozen=True)
class ServerSettings:
    # Not fields (no annotation): environment variables are named env_prefix + FIELD, and
    # env_aliases maps a field to a conventional name it is also read from (one that other
    # tools read too); the prefixed name wins. A subclass sets both for its app.
    env_prefix = "APP_"
    env_aliases = {}

    host: str = "127.0.0.1"
    # 0 asks the OS for a free port (the server logs the one it got).
    port: int = 8080
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
    # Seconds a client gets to send a whole request body, and the largest body, in bytes.
    body_timeout: float = 30.0
    max_body_size: int = 1_048_576
    # Seconds one write to a client may wait for it to read (a client that stops reading
    # would otherwise hold its connection and the response's memory forever).
    write_timeout: float = 30.0
    # Largest WebSocket message accepted, in bytes; a larger one is refused with close 1009.
    max_message_size: int = 1_048_576
    # Seconds of WebSocket silence before the server pings, and before an unanswered ping
    # drops the connection; 0 turns pings off.
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    # Origins allowed to open WebSockets, e.g. https://example.com; empty means the page's own
    # host only, "*" any (cross-site WebSocket hijacking defence).
    allowed_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port: {self.port} is not a TCP port; use 0-65535")
        if self.log_level.upper() not in LOG_LEVELS:
            raise SettingsError(
                f"log_level: {self.log_level!r} is not a level; use DEBUG, INFO, WARNING or ERROR"
            )
        self.require("shutdown_timeout", self.shutdown_timeout >= 0, "0 or more seconds")
        self.require("max_connections", self.max_connections >= 1, "at least 1")
        self.require("listen_backlog", self.listen_backlog >= 1, "at least 1")
        self.require("max_body_size", self.max_body_size >= 0, "0 or more bytes")
        self.require("max_message_size", self.max_message_size >= 125, "at least 125 bytes")
        self.require("ping_interval", self.ping_interval >= 0, "0 (off) or more seconds")
        for name in ("header_timeout", "body_timeout", "write_timeout", "ping_timeout"):
            self.require(name, getattr(self, name) > 0, "more than 0 seconds")

    def require(self, name: str, passed: bool, allowed: str) -> None:
        """Stop with a SettingsError that names the field and what it accepts."""
        if not passed:
            raise SettingsError(f"{name}: {getattr(self, name)!r} is out of range; use {allowed}")

    @classmethod
    def from_env(cls: type[T], environ: Mapping[str, str] = os.environ, **overrides: object) -> T:
        """Settings from `<env_prefix>*` variables, then from `overrides` (flags; None is unset)."""
        types = typing.get_type_hints(cls)
        values: dict[str, object] = {}
        for field in fields(cls):
            name = cls.env_prefix + field.name.upper()
            alias = cls.env_aliases.get(field.name)
            if name not in environ and alias is not None and alias in environ:
                name = alias
            if name in environ:
                values[field.name] = parse(name, environ[name], types[field.name])
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings (for a subprocess)."""
        prefix = self.env_prefix
        return {prefix + f.name.upper(): format_value(getattr(self, f.name)) for f in fields(self)}


BOOLEANS = {"1": True, "true": True, "yes": True, "on": True}
BOOLEANS.update({"0": False, "false": False, "no": False, "off": False})


def parse(name: str, raw: str, kind: object) -> object:
    """One variable's text as a value of the field's type; SettingsError names the variable."""
    raw = raw.strip()
    try:
        if kind is bool:
            return BOOLEANS[raw.lower()]
        if typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            return tuple(item(part.strip()) for part in raw.split(",") if part.strip())
        return kind(raw)
    except (ValueError, KeyError):
        raise SettingsError(f"{name}={raw!r}: expected {EXPECTED.get(kind, 'a value')}") from None


EXPECTED = {
    str: "text",
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    tuple[float, ...]: "numbers separated by ','",
    tuple[str, ...]: "values separated by ','",
}


def format_value(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(part) for part in value)
    return str(value)

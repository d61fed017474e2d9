"""The WebSocket opening handshake: what makes one acceptable, and the answer that accepts it.

gevent-websocket upgrades any request that asks, answers some bad handshakes with a 500, and
never checks Origin. These checks run before any upgrade, and a bad handshake gets a 4xx with a
one-line reason.
"""

import base64
import binascii
import hashlib
import logging
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # fixed by RFC 6455


def handshake_problem(
    environ: dict, allowed_origins: tuple[str, ...]
) -> tuple[int, str, list] | None:
    """What is wrong with this handshake, as (status, reason, extra headers), or None."""
    if environ["REQUEST_METHOD"] != "GET":
        return 405, "a WebSocket handshake is a GET", [("Allow", "GET")]
    if "upgrade" not in environ.get("HTTP_CONNECTION", "").lower():
        return 400, "a WebSocket handshake needs 'Connection: Upgrade'", []
    if environ["SERVER_PROTOCOL"] != "HTTP/1.1":
        return 400, "a WebSocket handshake needs HTTP/1.1", []
    if environ.get("CONTENT_LENGTH", "0") != "0" or "HTTP_TRANSFER_ENCODING" in environ:
        # Its bytes would be taken for frames.
        return 400, "a WebSocket handshake has no body", []
    if environ.get("HTTP_SEC_WEBSOCKET_VERSION") != "13":
        return 426, "only WebSocket version 13 is supported", [("Sec-WebSocket-Version", "13")]
    try:
        key = base64.b64decode(environ.get("HTTP_SEC_WEBSOCKET_KEY", ""), validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 16:
        return 400, "Sec-WebSocket-Key must be 16 bytes in base64", []
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None and not origin_allowed(
        origin, environ.get("HTTP_HOST", ""), allowed_origins
    ):
        log.warning("refused WebSocket from %r to host %r", origin, environ.get("HTTP_HOST"))
        return 403, "cross-origin WebSocket handshakes are not allowed", []
    return None


def origin_allowed(origin: str, host: str, allowed_origins: tuple[str, ...]) -> bool:
    """Browsers always send Origin: allow the listed ones, or by default the page's own host.

    This is the defence against cross-site WebSocket hijacking: a page on another site cannot
    open a socket that rides on this site's cookies.
    """
    if allowed_origins:
        return "*" in allowed_origins or origin in allowed_origins
    return urlsplit(origin).netloc.lower() == host.lower()


def accept_headers(environ: dict) -> list[tuple[str, str]]:
    """The headers of the 101 answer to an acceptable handshake."""
    key = environ["HTTP_SEC_WEBSOCKET_KEY"].strip()
    digest = hashlib.sha1((key + ACCEPT_GUID).encode("ascii")).digest()
    return [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", base64.b64encode(digest).decode("ascii")),
    ]

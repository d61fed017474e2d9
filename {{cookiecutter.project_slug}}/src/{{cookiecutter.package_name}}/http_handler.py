"""The per-connection handler: gevent's pywsgi handler plus a deadline for request headers.

Shared by server.py and the gunicorn worker, so both serve connections the same way.
"""

import logging

import gevent
from gevent.pywsgi import WSGIHandler

from .settings import Settings

log = logging.getLogger(__name__)


class HeaderTimeoutMixin:
    """Drop a connection that has not sent a whole request head within `header_timeout`.

    pywsgi waits for headers forever, so a slow or silent client (slowloris) could hold a
    connection slot indefinitely. The clock runs while a request line and headers are read,
    on new and on kept-alive connections, and stops once the response begins.
    """

    header_timeout = 10.0

    def handle_one_request(self):
        self._header_timer = gevent.Timeout.start_new(self.header_timeout)
        try:
            return super().handle_one_request()
        except gevent.Timeout as timeout:
            if timeout is not self._header_timer:
                raise
            log.info(
                "dropped %s: no request within %.1f s", self.client_address, self.header_timeout
            )
            return None  # ends the connection
        finally:
            self._header_timer.close()

    def handle_one_response(self):
        # The response may take as long as it needs; close() also frees the timer, which a
        # long-lived response (a stream, a WebSocket) would otherwise hold to its end.
        self._header_timer.close()
        return super().handle_one_response()


def make_handler(settings: Settings, base: type = WSGIHandler) -> type:
    """`base` (pywsgi's handler, or the WebSocket one) with the header timeout of `settings`."""
    return type("Handler", (HeaderTimeoutMixin, base), {"header_timeout": settings.header_timeout})

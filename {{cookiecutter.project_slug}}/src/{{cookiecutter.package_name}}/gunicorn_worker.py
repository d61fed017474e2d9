"""A gunicorn worker that serves connections exactly as `python -m {{ cookiecutter.package_name }}` does.

{%- if cookiecutter.use_websocket %}
gevent-websocket's GeventWebSocketWorker would use gevent-websocket's own handler, without
this project's handshake checks, frame limits, pings and closes; this subclass swaps in the
project's handler and adds the keep-alive loop and the 1001 "going away" on shutdown.
{%- else %}
gunicorn's gevent worker, with the project's handler (and so its header timeout).
{%- endif %}
"""
{% if cookiecutter.use_websocket %}
import gevent
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker as BaseWorker
{%- else %}
from gunicorn.workers.ggevent import GeventPyWSGIWorker as BaseWorker
{%- endif %}

from .http_handler import make_handler
from .settings import Settings
from .tuning import raise_open_file_limit, tune_process
{%- if cookiecutter.use_websocket %}
from .websocket_handler import configure as configure_websocket_handler
{%- endif %}


class Worker(BaseWorker):
    def init_process(self) -> None:
        # Runs in the forked worker before it serves: the master process stays unpatched.
        self.settings = Settings.from_env()
{%- if cookiecutter.use_websocket %}
        self.websocket_handler = configure_websocket_handler(self.settings)
        self.wsgi_handler = make_handler(self.settings, self.websocket_handler)
{%- else %}
        # On gunicorn's own handler: its access log and environ (RAW_URI, gunicorn.sock).
        self.wsgi_handler = make_handler(self.settings, BaseWorker.wsgi_handler)
{%- endif %}
        super().init_process()

    def run(self) -> None:
        # The app is loaded by now: the same process tuning as `python -m {{ cookiecutter.package_name }}`.
        raise_open_file_limit()
        tune_process()
{%- if cookiecutter.use_websocket %}
        self.websocket_handler.start_keep_alive()
{%- endif %}
        super().run()
{%- if cookiecutter.use_websocket %}

    def handle_exit(self, sig, frame) -> None:
        # SIGTERM: gunicorn stops accepting and waits graceful_timeout for open connections;
        # tell WebSocket clients first, so they close (and reconnect elsewhere) right away.
        gevent.spawn(self.websocket_handler.close_all, 1001, "server shutting down")
        super().handle_exit(sig, frame)
{%- endif %}

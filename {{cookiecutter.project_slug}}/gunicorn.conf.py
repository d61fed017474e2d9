"""gunicorn settings: `gunicorn -c gunicorn.conf.py` serves the app with gevent workers.

Each worker is one process holding thousands of connections on greenlets; run about one per
CPU core. Every setting, the address, the connection cap and the shutdown grace included, comes
from the same variables as for `python -m`: {{ cookiecutter.package_name | upper }}_*.
"""

import math
import os

from {{ cookiecutter.package_name }}.runtime.gunicorn import Worker
from {{ cookiecutter.package_name }}.settings import Settings

settings = Settings.from_env()

wsgi_app = "{{ cookiecutter.package_name }}.wsgi:app"
# The runtime's worker: it serves connections exactly as `python -m` does.
worker_class = Worker.with_settings(settings)
bind = f"{settings.host}:{settings.port}"
{%- if cookiecutter.use_chat and cookiecutter.broker == "memory" %}
# The chat's memory broker lives in one process: more workers would split the rooms.
# Generate with broker=redis to run several.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
{%- else %}
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
{%- endif %}
# Connections each worker holds at once, long-lived ones included.
worker_connections = settings.max_connections
backlog = settings.listen_backlog
# On SIGTERM, open requests get this long before the worker stops them.
graceful_timeout = math.ceil(settings.shutdown_timeout)
# Seconds a worker may go without telling the master it is alive (gevent workers do so
# every second, however many connections they hold).
timeout = 30
accesslog = "-"

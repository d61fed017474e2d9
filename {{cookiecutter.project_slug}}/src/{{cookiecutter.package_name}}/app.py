"""Build the Bottle app: each feature module installs its own routes.

Tests call create_app() with exactly the settings they need.
"""

import functools
import logging

import bottle

{%- set features = ["health"] %}
{%- if cookiecutter.use_stream %}{% set _ = features.append("stream") %}{% endif %}
{%- if cookiecutter.use_fetch %}{% set _ = features.append("fetch") %}{% endif %}
{%- if cookiecutter.use_websocket %}{% set _ = features.append("websocket") %}{% endif %}
{%- if cookiecutter.use_sse %}{% set _ = features.append("sse") %}{% endif %}
{%- if cookiecutter.use_js_client %}{% set _ = features.append("client") %}{% endif %}
{%- if cookiecutter.use_chat %}{% set _ = features.append("chat") %}{% endif %}

from . import {{ features | sort | join(", ") }}
from .settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> bottle.Bottle:
    settings = settings or Settings()
    app = bottle.Bottle()
    app.default_error_handler = plain_text_error
    app.install(log_route_errors)
{%- for feature in features %}
    {{ feature }}.install(app, settings)
{%- endfor %}
    return app


def log_route_errors(callback):
    """Log a failing route once, with its method and path, and answer that request alone with
    a 500 that reveals nothing of the error; every other connection carries on."""

    @functools.wraps(callback)
    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except bottle.HTTPResponse:
            raise  # abort() and redirect() are answers, not failures
        except Exception:
            request = bottle.request
            log.exception("%s %s failed", request.method, request.fullpath)
            raise bottle.HTTPError(500, "internal server error") from None

    return wrapper


def plain_text_error(error: bottle.HTTPError) -> str:
    """Errors as one line of text instead of Bottle's HTML page: easier to read for API clients."""
    bottle.response.content_type = "text/plain; charset=utf-8"
    return f"{error.status_line}: {error.body}\n"

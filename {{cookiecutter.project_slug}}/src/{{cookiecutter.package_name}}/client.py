"""GET /: the browser client, plain HTML, CSS and JavaScript from static/ with no build step."""

from pathlib import Path

import bottle

from .settings import Settings

STATIC = Path(__file__).parent / "static"


def install(app: bottle.Bottle, settings: Settings) -> None:
    @app.get("/")
    def index() -> bottle.HTTPResponse:
        return bottle.static_file("index.html", root=STATIC)

    @app.get("/static/<path:path>")
    def static(path: str) -> bottle.HTTPResponse:
        # static_file refuses paths that leave STATIC (../), with 403.
        return bottle.static_file(path, root=STATIC)

"""The server underneath the app: the same in every project made from the template.

Leave these modules as they are: a fix to them reaches this project as a template update
(see the README). The app on top (settings.py, app.py and the feature modules) is yours.

    server.py     serve(app, settings): monkey-patching first, gevent's WSGIServer, signals
    gunicorn.py   the same under gunicorn: Worker.with_settings(settings)
    lifecycle.py  what both share: the configured handler, start, going away, stop
    handler.py    each connection: deadlines, request framing, body, WebSocket upgrades
    headers.py    request headers, parsed strictly in linear time
    handshake.py  the WebSocket opening handshake and its Origin check
    routing.py    websocket_route(): how a feature declares a WebSocket route
    websocket.py  one WebSocket connection: frames, closes, limits
    keepalive.py  the open WebSockets: pings, and closing them all on shutdown
    settings.py   ServerSettings, the base of the app's Settings
    tuning.py     process tuning for thousands of connections

This file imports nothing: server.py must monkey-patch before anything else is imported.
"""

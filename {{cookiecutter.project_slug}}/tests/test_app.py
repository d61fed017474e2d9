"""The app as a whole: errors are short plain text, unknown routes are 404."""


def test_unknown_route_is_a_plain_text_404(app):
    response = app.get("/no-such-page", status=404)
    assert response.content_type == "text/plain"
    assert response.text.startswith("404 Not Found")


def test_wrong_method_is_405(app):
    app.post("/{{ 'stream' if cookiecutter.use_stream else 'fetch' if cookiecutter.use_fetch else 'websocket' }}", status=405)

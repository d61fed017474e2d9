"""GET /: the browser page and its static files."""

import re

import pytest

SECTIONS = {
    "stream": {{ cookiecutter.use_stream }},
    "fetch": {{ cookiecutter.use_fetch }},
    "websocket": {{ cookiecutter.use_websocket }},
    "events": {{ cookiecutter.use_sse }},
    "chat": {{ cookiecutter.use_chat }},
}


def test_index_is_html_with_a_section_per_feature(app):
    page = app.get("/")
    assert page.content_type == "text/html"
    for section, enabled in SECTIONS.items():
        assert (f'id="{section}"' in page.text) == enabled, section


def test_every_script_and_stylesheet_on_the_page_is_served(app):
    page = app.get("/").text
    assets = re.findall(r'(?:src|href)="(static/[^"]+)"', page)
    assert assets, "the page links no assets"
    for asset in assets:
        response = app.get(f"/{asset}")
        assert response.content_length > 0
        assert response.content_type in {"text/css", "application/javascript", "text/javascript"}


def test_scripts_insert_text_never_html(app):
    page = app.get("/").text
    for asset in re.findall(r'src="(static/[^"]+\.js)"', page):
        assert "innerHTML" not in app.get(f"/{asset}").text, asset


@pytest.mark.parametrize(
    "path", ["/static/../app.py", "/static/%2e%2e/app.py", "/static/missing.js"]
)
def test_static_files_stay_inside_the_static_folder(app, path):
    response = app.get(path, expect_errors=True)
    assert response.status_int in {403, 404}
    assert "create_app" not in response.text

"""Jinja filters that write a free-text answer (the project name, its description, its author)
into each kind of file it goes into, escaped for that file's own language.

cookiecutter loads them by the names listed under `_extensions` in cookiecutter.json; it puts
this folder on the import path for that (cruft does too).
"""

import json
import re

from cookiecutter.utils import simple_filter
from slugify import slugify

# What Markdown would read as markup in a line of text: each is shown as itself when escaped.
MARKDOWN = re.compile(r"([\\`*_\[\]<>&|~#])")


@simple_filter
def slug(text: str) -> str:
    """A folder and distribution name: "O'Brien's Café App" gives "o-briens-cafe-app"."""
    return slugify(re.sub(r"(\w)['’]s\b", r"\1s", text))  # a possessive is not two words


@simple_filter
def markdown(text: str) -> str:
    return MARKDOWN.sub(r"\\\1", text)


@simple_filter
def python_string(text: str) -> str:
    """A Python string literal, quoted as ruff format would quote it (double quotes unless the
    text has more of those than of single ones)."""
    escaped = text.replace("\\", "\\\\")
    if text.count('"') > text.count("'"):
        return "'" + escaped.replace("'", "\\'") + "'"
    return '"' + escaped.replace('"', '\\"') + '"'


@simple_filter
def json_string(text: str) -> str:
    """A JSON string, which TOML and YAML read as one of theirs too; non-ASCII stays as it is."""
    return json.dumps(text, ensure_ascii=False)


@simple_filter
def dockerfile_string(text: str) -> str:
    """A double-quoted Dockerfile value: no backslash, quote or `$` (a variable) left bare."""
    return '"' + re.sub(r'([\\"$])', r"\\\1", text) + '"'

"""Serve sample_app.py the way `python -m` serves the app."""

# First import: it monkey-patches the standard library before anything opens a socket.
from {{ cookiecutter.package_name }}.runtime.server import serve  # isort: skip

import logging

from sample_app import app, settings

logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
serve(app, settings)

"""The WSGI app for servers that import one, such as gunicorn: `<package>.wsgi:app`.

Settings come from the environment ({{ cookiecutter.package_name | upper }}_* variables).
The importing server monkey-patches first (gunicorn's gevent workers do).
"""

from .app import create_app
from .settings import Settings

app = create_app(Settings.from_env())

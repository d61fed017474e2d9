"""The app's package: real-time HTTP on gevent and Bottle."""

# Keep this module free of imports: `python -m` loads it before runtime/server.py has had the
# chance to monkey-patch the standard library.
__title__ = {{ cookiecutter.project_name | python_string }}
__version__ = "{{ cookiecutter.version }}"

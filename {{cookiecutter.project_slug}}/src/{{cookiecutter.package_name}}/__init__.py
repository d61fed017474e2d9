"""{{ cookiecutter.project_name }}: real-time HTTP on gevent and Bottle."""

# Keep this module free of imports: `python -m {{ cookiecutter.package_name }}` loads it before
# server.py has had the chance to monkey-patch the standard library.
__version__ = "{{ cookiecutter.version }}"

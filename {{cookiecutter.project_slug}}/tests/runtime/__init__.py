"""Tests of src/{{ cookiecutter.package_name }}/runtime/, the server underneath the app.

They run against sample_app.py, a small app of their own, so they are the same whatever
features the project has; the template runs them once for every project made from it.
"""

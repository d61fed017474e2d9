"""Settings: defaults, environment variables, and clear errors for bad values."""

import pytest

from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings, SettingsError


def test_defaults():
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == {{ cookiecutter.port }}


def test_environment_variables_set_fields_and_flags_win():
    environ = {f"{ENV_PREFIX}PORT": "9001", f"{ENV_PREFIX}HOST": "0.0.0.0"}
    settings = Settings.from_env(environ, port=9002, host=None)
    assert settings.port == 9002
    assert settings.host == "0.0.0.0"


def test_to_env_round_trips():
    settings = Settings(port=0, shutdown_timeout=1.5)
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "eighty", "expected a whole number"),
        ("PORT", "70000", "is not a TCP port"),
        ("SHUTDOWN_TIMEOUT", "soon", "expected a number"),
        ("LOG_LEVEL", "LOUD", "is not a level"),
{%- if cookiecutter.use_stream %}
        ("STREAM_DELAYS", "1", "give two pauses"),
        ("STREAM_DELAYS", "1,x", "numbers separated by ','"),
{%- endif %}
{%- if cookiecutter.use_fetch %}
        ("FETCH_CHUNKS", "0", "must be at least 1"),
{%- endif %}
    ],
)
def test_bad_values_name_the_setting(name, value, message):
    with pytest.raises(SettingsError, match=message) as error:
        Settings.from_env({f"{ENV_PREFIX}{name}": value})
    assert name.lower() in str(error.value).lower()

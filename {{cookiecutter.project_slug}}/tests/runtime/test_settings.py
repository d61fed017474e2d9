"""ServerSettings: its defaults, how variables are read, and clear errors for bad values."""

from dataclasses import asdict

import pytest

from {{ cookiecutter.package_name }}.runtime.settings import ServerSettings, SettingsError


class Prefixed(ServerSettings):
    env_prefix = "MY_APP_"
    env_aliases = {"host": "HOST_ALIAS"}


def test_defaults_are_safe_for_a_server_on_its_own():
    assert asdict(ServerSettings()) == {
        "host": "127.0.0.1",  # loopback: exposing the server is a deliberate choice
        "port": 8080,
        "log_level": "INFO",
        "shutdown_timeout": 5.0,
        "max_connections": 10_000,
        "listen_backlog": 2048,
        "header_timeout": 10.0,
        "body_timeout": 30.0,
        "max_body_size": 1_048_576,
        "write_timeout": 30.0,
        "max_message_size": 1_048_576,
        "ping_interval": 20.0,
        "ping_timeout": 20.0,
        "allowed_origins": (),
    }


def test_every_type_is_read_from_its_variable():
    environ = {
        "MY_APP_HOST": " 0.0.0.0 ",
        "MY_APP_PORT": "9001",
        "MY_APP_BODY_TIMEOUT": "2.5",
        "MY_APP_ALLOWED_ORIGINS": "https://a.example, ,https://b.example",
    }
    settings = Prefixed.from_env(environ)
    assert (settings.host, settings.port, settings.body_timeout) == ("0.0.0.0", 9001, 2.5)
    assert settings.allowed_origins == ("https://a.example", "https://b.example")


def test_flags_win_over_variables_and_variables_over_aliases():
    environ = {"MY_APP_PORT": "9001", "HOST_ALIAS": "10.0.0.1"}
    assert Prefixed.from_env(environ, port=9002, host=None).port == 9002
    assert Prefixed.from_env(environ).host == "10.0.0.1"
    assert Prefixed.from_env({**environ, "MY_APP_HOST": "10.0.0.2"}).host == "10.0.0.2"


def test_to_env_round_trips():
    settings = Prefixed(port=0, shutdown_timeout=1.5, allowed_origins=("https://a.example",))
    assert set(settings.to_env()) == {f"MY_APP_{name.upper()}" for name in asdict(settings)}
    assert Prefixed.from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "eighty", "MY_APP_PORT='eighty': expected a whole number"),
        ("PORT", "70000", "port: 70000 is not a TCP port"),
        ("SHUTDOWN_TIMEOUT", "soon", "expected a number"),
        ("SHUTDOWN_TIMEOUT", "-1", "shutdown_timeout: -1.0 is out of range; use 0 or more seconds"),
        ("LOG_LEVEL", "LOUD", "log_level: 'LOUD' is not a level"),
        ("MAX_CONNECTIONS", "0", "max_connections: 0 is out of range; use at least 1"),
        ("HEADER_TIMEOUT", "0", "header_timeout: 0.0 is out of range; use more than 0 seconds"),
        ("BODY_TIMEOUT", "-2", "body_timeout: -2.0 is out of range"),
        ("WRITE_TIMEOUT", "0", "write_timeout: 0.0 is out of range"),
        ("MAX_BODY_SIZE", "-1", "max_body_size: -1 is out of range; use 0 or more bytes"),
        (
            "MAX_MESSAGE_SIZE",
            "100",
            "max_message_size: 100 is out of range; use at least 125 bytes",
        ),
        ("PING_INTERVAL", "-1", "ping_interval: -1.0 is out of range; use 0 (off) or more seconds"),
    ],
)
def test_bad_values_name_the_setting_and_the_fix(name, value, message):
    with pytest.raises(SettingsError) as error:
        Prefixed.from_env({f"MY_APP_{name}": value})
    assert message in str(error.value)

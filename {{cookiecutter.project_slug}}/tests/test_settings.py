"""The app's Settings: its own variables, the fields its features add, and their errors."""

from dataclasses import asdict

import pytest

from {{ cookiecutter.package_name }}.runtime.settings import ServerSettings
from {{ cookiecutter.package_name }}.settings import Settings, SettingsError

PREFIX = "{{ cookiecutter.package_name | upper }}_"


def test_app_fields_and_their_defaults():
    server_fields = set(asdict(ServerSettings()))
    own = {name: value for name, value in asdict(Settings()).items() if name not in server_fields}
    assert own == {
        "expose_stats": False,
{%- if cookiecutter.use_stream or cookiecutter.use_sse %}
        "stream_delays": (3.0, 5.0),
{%- endif %}
{%- if cookiecutter.use_sse %}
        "sse_heartbeat": 15.0,
{%- endif %}
{%- if cookiecutter.use_fetch %}
        "fetch_chunks": 5,
        "fetch_interval": 1.0,
        "fetch_queue_size": 16,
{%- endif %}
{%- if cookiecutter.use_chat %}
        "chat_history": 100,
        "chat_max_text": 2000,
        "chat_poll_timeout": 25.0,
        "chat_queue_size": 256,
        "chat_post_rate": 5.0,
        "chat_post_burst": 20,
        "chat_behind_proxy": False,
{%- endif %}
{%- if cookiecutter.use_chat and cookiecutter.broker == "memory" %}
        "chat_max_rooms": 1000,
{%- endif %}
{%- if cookiecutter.broker == "redis" %}
        "redis_url": "redis://127.0.0.1:6379/0",
        "chat_room_ttl": 604_800,
{%- endif %}
    }
    assert Settings().port == {{ cookiecutter.port }}  # the port answered when generating


def test_variables_carry_the_app_prefix():
    settings = Settings.from_env({f"{PREFIX}PORT": "9001", f"{PREFIX}EXPOSE_STATS": "yes"})
    assert (settings.port, settings.expose_stats) == (9001, True)
    assert Settings.from_env(settings.to_env()) == settings
{%- if cookiecutter.broker == "redis" %}


def test_redis_url_is_also_read_from_the_conventional_variable():
    conventional = {"REDIS_URL": "redis://cache:6379/1"}
    assert Settings.from_env(conventional).redis_url == "redis://cache:6379/1"
    both = {**conventional, f"{PREFIX}REDIS_URL": "redis://own:6379/2"}
    assert Settings.from_env(both).redis_url == "redis://own:6379/2"
{%- endif %}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("EXPOSE_STATS", "maybe", "expected true or false"),
        ("PORT", "70000", "is not a TCP port"),
{%- if cookiecutter.use_sse %}
        ("SSE_HEARTBEAT", "0", "sse_heartbeat: 0.0 is out of range; use more than 0 seconds"),
{%- endif %}
{%- if cookiecutter.use_stream or cookiecutter.use_sse %}
        ("STREAM_DELAYS", "1", "give two pauses"),
        ("STREAM_DELAYS", "1,x", "numbers separated by ','"),
{%- endif %}
{%- if cookiecutter.use_fetch %}
        ("FETCH_CHUNKS", "0", "fetch_chunks: 0 is out of range; use at least 1"),
        ("FETCH_INTERVAL", "-1", "fetch_interval: -1.0 is out of range"),
{%- endif %}
{%- if cookiecutter.use_chat %}
        ("CHAT_HISTORY", "0", "chat_history: 0 is out of range; use at least 1"),
        ("CHAT_POLL_TIMEOUT", "0", "chat_poll_timeout: 0.0 is out of range"),
        ("CHAT_POST_RATE", "0", "chat_post_rate: 0.0 is out of range; use more than 0 a second"),
        ("CHAT_POST_BURST", "0", "chat_post_burst: 0 is out of range; use at least 1"),
{%- endif %}
{%- if cookiecutter.broker == "redis" %}
        ("CHAT_ROOM_TTL", "0", "chat_room_ttl: 0 is out of range; use at least 1 second"),
{%- endif %}
    ],
)
def test_bad_values_name_the_setting(name, value, message):
    with pytest.raises(SettingsError, match=message) as error:
        Settings.from_env({f"{PREFIX}{name}": value})
    assert name.lower() in str(error.value).lower()

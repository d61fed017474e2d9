"""GET /healthz: a liveness answer for load balancers, with resource counts only when asked."""

from dataclasses import replace

import gevent
import webtest

from {{ cookiecutter.package_name }}.app import create_app


def test_healthz_says_ok_and_nothing_more_by_default(app):
    response = app.get("/healthz")
    assert response.json == {"status": "ok"}
    assert response.content_type == "application/json"


def test_healthz_stats_only_when_turned_on(settings):
    client = webtest.TestApp(create_app(replace(settings, expose_stats=True)))
    gevent.sleep(0)  # starts gevent's hub, itself a greenlet

    def greenlets() -> int:
        return client.get("/healthz").json["greenlets"]

    # Greenlets of earlier tests (a Redis listener, a write being flushed) may end at any
    # moment: count without, with and again without one more, until the two without agree.
    for _ in range(40):
        before = greenlets()
        sleeper = gevent.spawn(gevent.sleep, 10)
        gevent.sleep(0)
        during = client.get("/healthz").json
        sleeper.kill()
        if greenlets() == before:
            break
        gevent.sleep(0.05)
    assert set(during) == {"status", "objects", "greenlets", "open_fds", "max_rss_kib"}
    assert during["greenlets"] == before + 1
    assert during["open_fds"] > 0
    assert during["max_rss_kib"] > 0

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
    before = client.get("/healthz").json
    for _ in range(40):  # greenlets of earlier tests may still be ending: wait for a steady count
        gevent.sleep(0.05)
        settled = client.get("/healthz").json
        if settled["greenlets"] == before["greenlets"]:
            break
        before = settled
    sleeper = gevent.spawn(gevent.sleep, 10)
    gevent.sleep(0)
    after = client.get("/healthz").json
    sleeper.kill()
    assert set(after) == {"status", "objects", "greenlets", "open_fds", "max_rss_kib"}
    assert after["greenlets"] == before["greenlets"] + 1
    assert after["open_fds"] > 0
    assert after["max_rss_kib"] > 0

"""The browser page, end to end: headless Chromium against the real server of every bake with a client.

Playwright drives Debian's Chromium (/usr/bin/chromium, or the binary named by BROWSER_PATH) and
never downloads a browser. Without Chromium or Playwright the whole module is skipped with one
line that says how to enable it. Screenshots go to test-artifacts/browser/ (not committed).
"""

import json
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import (
    NGINX,
    ODD_NAME,
    REDIS,
    ROOT,
    RedisProcess,
    ServerProcess,
    combination_id,
    feature_combinations,
    free_port,
    module_of,
    running_nginx,
)

BROWSER_PATH = os.environ.get("BROWSER_PATH", "/usr/bin/chromium")
ENABLE = "browser tests need Chromium: apt-get install chromium and pip install playwright (or set BROWSER_PATH)"

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:
    pytest.skip(f"{ENABLE}; playwright is not installed", allow_module_level=True)
if not os.access(BROWSER_PATH, os.X_OK):
    pytest.skip(f"{ENABLE}; no browser at {BROWSER_PATH}", allow_module_level=True)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = ROOT / "test-artifacts" / "browser"

# Short pauses: the page's code paths are the ones the defaults take, only quicker.
STREAM_DELAYS = (0.4, 0.6)
FETCH_CHUNKS = 4
FETCH_INTERVAL = 0.3
SERVER_SETTINGS = {
    "stream_delays": ",".join(map(str, STREAM_DELAYS)),
    "fetch_chunks": str(FETCH_CHUNKS),
    "fetch_interval": str(FETCH_INTERVAL),
}
# Parts must spread over at least this share of the server's pauses: a loaded machine may
# deliver one part late and the next on time, but a buffered response shows no spread at all.
MIN_GAP_SHARE = 0.5
XSS = "<img src=x onerror=alert(1)>"
TIMEOUT_MS = 15_000

# Every combination with the page; the odd project name has a test of its own.
CLIENT_COMBINATIONS = [c for c in feature_combinations() if c["use_js_client"] and "project_name" not in c]
ODD_NAMED = next(c for c in feature_combinations() if "project_name" in c)
# The page's sections for the endpoints, in page order, and the answer that adds each.
SECTIONS = {"stream": "use_stream", "fetch": "use_fetch", "events": "use_sse", "websocket": "use_websocket"}
FULL = next(c for c in CLIENT_COMBINATIONS if all(c[feature] for feature in SECTIONS.values()))


def having(feature: str) -> list[dict[str, bool]]:
    return [c for c in CLIENT_COMBINATIONS if c[feature]]


def Server(project: Path, log_dir: Path, port: int = 0, env=None, **settings: str) -> ServerProcess:
    """A bake's server with the short pauses above, and these settings (by field name)."""
    prefix = module_of(project).upper() + "_"
    variables = {prefix + name.upper(): value for name, value in {**SERVER_SETTINGS, **settings}.items()}
    return ServerProcess(project, log_dir, port, env={**variables, **(env or {})})


class Bakes:
    """One bake and one running server per combination, shared by this worker's tests."""

    def __init__(self, cookies, tmp_factory) -> None:
        self.cookies = cookies
        self.tmp_factory = tmp_factory
        self.projects: dict[str, Path] = {}
        self.servers: dict[str, ServerProcess] = {}
        self.redis: RedisProcess | None = None

    def project(self, context: dict[str, bool]) -> Path:
        name = combination_id(context)
        if name not in self.projects:
            result = self.cookies.bake(extra_context=context)
            assert result.exception is None, result.exception
            self.projects[name] = result.project_path
        return self.projects[name]

    def server(self, context: dict[str, bool]) -> ServerProcess:
        name = combination_id(context)
        if name not in self.servers:
            log_dir = self.tmp_factory.mktemp(f"server-{name}")
            env = {"REDIS_URL": self.redis_url()} if context.get("broker") == "redis" else {}
            self.servers[name] = Server(self.project(context), log_dir, env=env).start()
        return self.servers[name]

    def redis_url(self) -> str:
        """A redis-server of this worker's own, for bakes with the Redis chat broker."""
        if self.redis is None:
            if REDIS is None:
                pytest.skip("the Redis chat broker needs redis-server: apt-get install redis-server")
            self.redis = RedisProcess().start()
        return self.redis.url

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()
        if self.redis is not None:
            self.redis.stop()


@dataclass
class Tab:
    """A page in a fresh browser context, with everything it did that a test may check."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_quiet(self) -> None:
        assert self.dialogs == [], f"the page opened dialogs: {self.dialogs}"
        assert self.errors == [], f"the page raised: {self.errors}"


@pytest.fixture(scope="session")
def browser():
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=BROWSER_PATH, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="session")
def bakes(cookies_session, tmp_path_factory):
    bakes = Bakes(cookies_session, tmp_path_factory)
    yield bakes
    bakes.stop_all()


@pytest.fixture
def open_tab(browser: Browser):
    """open_tab(url, width, height) -> Tab; contexts are closed after the test."""
    contexts = []

    def open_tab(url: str, width: int = 1280, height: int = 800) -> Tab:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        tab = Tab(context.new_page())

        def on_dialog(dialog) -> None:
            tab.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        tab.page.on("dialog", on_dialog)
        tab.page.on("pageerror", lambda error: tab.errors.append(str(error)))
        tab.page.on("request", lambda request: tab.requests.append(request.url))
        tab.page.on("websocket", lambda websocket: tab.requests.append(websocket.url))
        tab.page.goto(url)
        return tab

    yield open_tab
    for context in contexts:
        context.close()


# Records when each new log entry enters the page, by the page's own clock.
WATCH_LOG = """(selector) => {
  const arrivals = [];
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeName === "LI") arrivals.push({ at: performance.now(), count: node.parentNode.children.length });
      }
    }
  }).observe(document.querySelector(selector), { childList: true });
  window.arrivals = window.arrivals || {};
  window.arrivals[selector] = arrivals;
}"""


def run_chunked_section(tab: Tab, section: str, button: str, parts: int) -> tuple[list[str], list[float], list[dict]]:
    """Click the section's button and wait for its status to say done: (texts, shown times, arrivals)."""
    page = tab.page
    log = f"#{section} ol"
    page.evaluate(WATCH_LOG, log)
    page.locator(f"#{section}").get_by_role("button", name=button, exact=True).click()
    status = page.locator(f"#{section}").get_by_role("status")
    expect(status).to_have_text(re.compile(rf"^Done: {parts} parts in \d+\.\d\d s\.$"))
    texts = page.locator(f"{log} li .text").all_text_contents()
    times = page.locator(f"{log} li .time").all_text_contents()
    shown = [float(re.fullmatch(r"\+(\d+\.\d\d) s", time).group(1)) for time in times]
    arrivals = page.evaluate("(selector) => window.arrivals[selector]", log)
    return texts, shown, arrivals


def assert_one_by_one(shown: list[float], arrivals: list[dict], pauses: list[float]) -> None:
    """Each part entered the page as its own entry, spread over the server's pauses: not all at once.

    A part delayed by a busy machine arrives close to the next one (the page may even add both
    in one task), so single gaps may shrink; the spread from first to last still covers most of
    the pauses, which a buffered response (every part in the same instant) cannot.
    """
    counts = [a["count"] for a in arrivals]
    assert len(counts) == len(pauses) + 1 and counts[-1] == len(pauses) + 1, arrivals
    arrived = [a["at"] / 1000 for a in arrivals]
    for times, what in [(arrived, "parts arrived at (s, page clock)"), (shown, "the page shows times")]:
        assert times == sorted(times), f"{what} {times}"
        assert times[-1] - times[0] >= MIN_GAP_SHARE * sum(pauses), f"{what} {times}"


def wait_until_open(tab: Tab) -> None:
    expect(tab.page.locator("#ws-state")).to_have_text("open")


def send(tab: Tab, text: str) -> None:
    """Type a message and press Enter, as a keyboard user would, then wait for its echo."""
    message = tab.page.get_by_label("Message", exact=True)
    message.fill(text)
    message.press("Enter")
    expect(message).to_be_focused()
    expect(message).to_have_value("")
    expect(tab.page.locator("#ws-log li.received .text").last).to_have_text(text)


def check_stream(tab: Tab) -> None:
    texts, shown, arrivals = run_chunked_section(tab, "stream", "Start stream", 3)
    assert texts == ["START", "MIDDLE", "END"]
    assert_one_by_one(shown, arrivals, list(STREAM_DELAYS))


def check_fetch(tab: Tab) -> None:
    texts, shown, arrivals = run_chunked_section(tab, "fetch", "Fetch", FETCH_CHUNKS)
    assert texts == [f"chunk {n} of {FETCH_CHUNKS}" for n in range(1, FETCH_CHUNKS + 1)]
    assert_one_by_one(shown, arrivals, [FETCH_INTERVAL] * (FETCH_CHUNKS - 1))


def check_events(tab: Tab) -> None:
    """The browser's EventSource shows START, MIDDLE and END one by one, over the pauses."""
    page = tab.page
    log = "#events ol"
    page.evaluate(WATCH_LOG, log)
    page.get_by_role("button", name="Start events", exact=True).click()
    done = re.compile(r"^Done: 3 events in \d+\.\d\d s\.$")
    expect(page.locator("#events-status")).to_have_text(done, timeout=TIMEOUT_MS)
    assert page.locator(f"{log} li .text").all_text_contents() == ["START", "MIDDLE", "END"]
    times = page.locator(f"{log} li .time").all_text_contents()
    shown = [float(re.fullmatch(r"\+(\d+\.\d\d) s", time).group(1)) for time in times]
    assert_one_by_one(shown, page.evaluate("(selector) => window.arrivals[selector]", log), list(STREAM_DELAYS))


def use_every_section(tab: Tab, context: dict[str, bool]) -> None:
    if context["use_stream"]:
        check_stream(tab)
    if context["use_sse"]:
        check_events(tab)
    if context["use_fetch"]:
        check_fetch(tab)
    if context["use_websocket"]:
        wait_until_open(tab)
        send(tab, "hello from the browser")
        send(tab, XSS)


@pytest.mark.parametrize("context", having("use_stream"), ids=combination_id)
def test_stream_parts_appear_one_by_one(bakes, open_tab, context):
    tab = open_tab(bakes.server(context).url)
    check_stream(tab)
    tab.assert_quiet()


@pytest.mark.parametrize("context", having("use_fetch"), ids=combination_id)
def test_queue_fetch_shows_chunks_as_the_worker_makes_them(bakes, open_tab, context):
    tab = open_tab(bakes.server(context).url)
    check_fetch(tab)
    tab.assert_quiet()


@pytest.mark.parametrize("context", having("use_websocket"), ids=combination_id)
def test_websocket_message_is_echoed_into_the_log(bakes, open_tab, context):
    tab = open_tab(bakes.server(context).url)
    wait_until_open(tab)
    send(tab, "hello from the browser")
    entries = tab.page.locator("#ws-log li")
    expect(entries).to_have_count(2)
    expect(entries.nth(0)).to_have_class("sent")
    expect(entries.nth(0).locator(".text")).to_have_text("hello from the browser")
    expect(entries.nth(1)).to_have_class("received")
    tab.assert_quiet()


@pytest.mark.parametrize("context", having("use_websocket"), ids=combination_id)
def test_websocket_markup_is_shown_as_text_and_runs_nothing(bakes, open_tab, context):
    tab = open_tab(bakes.server(context).url)
    wait_until_open(tab)
    send(tab, XSS)
    log = tab.page.locator("#ws-log")
    for kind in ("sent", "received"):
        assert log.locator(f"li.{kind} .text").text_content() == XSS
    assert log.locator("img").count() == 0
    assert tab.page.evaluate("document.images.length") == 0
    tab.page.wait_for_timeout(300)  # time for a stray image to fail and fire its onerror
    assert not [url for url in tab.requests if url.endswith("/x")], tab.requests
    tab.assert_quiet()


@pytest.mark.parametrize("context", having("use_websocket"), ids=combination_id)
def test_websocket_reconnects_by_itself_after_a_server_restart(bakes, open_tab, tmp_path, context):
    # A fixed port, so the restarted server is where the page left it.
    server = Server(bakes.project(context), tmp_path, port=free_port(), shutdown_timeout="1")
    server.start()
    try:
        tab = open_tab(server.url)
        state = tab.page.locator("#ws-state")
        wait_until_open(tab)
        send(tab, "before the restart")

        assert server.stop() == 0, server.log
        # A close the server meant is shown as such, with its code and reason, and a reconnect.
        notice = tab.page.locator("#ws-log li.meta").first
        expect(notice).to_have_text(
            re.compile(r"^The server is going away \(code 1001 going away: server shutting down\); reconnecting in")
        )
        expect(state).not_to_have_text("open")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.page.screenshot(path=ARTIFACTS / f"{combination_id(context)}-reconnecting.png")

        server.start()
        expect(state).to_have_text("open")
        send(tab, "after the restart")
        received = tab.page.locator("#ws-log li.received .text").all_text_contents()
        assert received == ["before the restart", "after the restart"]
        tab.assert_quiet()
    finally:
        server.stop()


@pytest.mark.parametrize("context", CLIENT_COMBINATIONS, ids=combination_id)
def test_page_is_usable_by_keyboard_and_screen_reader(bakes, open_tab, context):
    tab = open_tab(bakes.server(context).url)
    page = tab.page
    sections = [name for name, feature in SECTIONS.items() if context[feature]]
    ids = page.locator("main > section").evaluate_all("sections => sections.map((section) => section.id)")
    assert [name for name in ids if name in SECTIONS] == sections
    for section in sections:
        # Every section is a region named by its heading; every log announces new entries.
        expect(page.get_by_role("region", name=page.locator(f"#{section} h2").text_content())).to_be_visible()
        expect(page.locator(f"#{section} ol")).to_have_attribute("aria-live", "polite")
        expect(page.locator(f"#{section} ol")).to_have_attribute("aria-label", re.compile(r"\w"))
    if context["use_websocket"]:
        wait_until_open(tab)
        expect(page.get_by_role("textbox", name="Message")).to_be_visible()
        expect(page.locator("#ws-state")).to_have_attribute("role", "status")
    # Tab visits every control and scrollable log in page order, and outlines whatever has focus.
    name = "(element) => element.getAttribute('aria-label') || element.id || element.textContent.trim()"
    focusable = page.locator("button:visible, input:visible, [tabindex='0']:visible")
    expected = focusable.evaluate_all(f"(elements) => elements.map({name})")
    reached = []
    for _ in expected:
        page.keyboard.press("Tab")
        focused = page.evaluate(
            f"""() => {{
              const element = document.activeElement;
              return {{ name: ({name})(element), outline: getComputedStyle(element).outlineStyle }};
            }}"""
        )
        assert focused["outline"] != "none", f"{focused['name']} has focus but no outline"
        reached.append(focused["name"])
    assert reached == expected
    tab.assert_quiet()


@pytest.mark.parametrize("context", CLIENT_COMBINATIONS, ids=combination_id)
def test_every_section_runs_and_the_page_fits_desktop_and_phone(bakes, open_tab, context):
    """Use every section, then save screenshots for a reviewer: test-artifacts/browser/<combination>*.png."""
    tab = open_tab(bakes.server(context).url)
    page = tab.page
    use_every_section(tab, context)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = combination_id(context)

    cards = page.locator("main > section")
    tops = {round(box["y"]) for box in (cards.nth(i).bounding_box() for i in range(cards.count()))}
    # Up to three cards share a row on a desktop (more wrap to the next one).
    assert len(tops) == -(-cards.count() // 3), "on a desktop the sections sit side by side"
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)

    page.set_viewport_size({"width": 375, "height": 740})
    lefts = {round(box["x"]) for box in (cards.nth(i).bounding_box() for i in range(cards.count()))}
    assert len(lefts) == 1, "on a phone the sections stack"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    page.screenshot(path=ARTIFACTS / f"{name}-phone.png", full_page=True)
    tab.assert_quiet()


# The README's proxy config, moved under /app/ (the page must work at a sub-path).
NGINX_SITE = """
    map $http_upgrade $websocket_upgrade {{
        ~*^websocket$ websocket;
        default       "";
    }}
    map $http_upgrade $connection_upgrade {{
        ~*^websocket$ upgrade;
        default       "";
    }}
    server {{
        listen 127.0.0.1:{port};
        location /app/ {{
            proxy_pass http://127.0.0.1:{app_port}/;
            proxy_http_version 1.1;
            # $http_host keeps the port, which the WebSocket origin check compares with Origin.
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $websocket_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
    }}
"""


@pytest.mark.skipif(NGINX is None, reason="the sub-path test needs nginx: apt-get install nginx-light")
def test_page_works_at_a_sub_path_behind_nginx(bakes, open_tab, tmp_path):
    app = bakes.server(FULL)
    port = free_port()
    site = NGINX_SITE.format(port=port, app_port=app.port)
    with running_nginx(tmp_path, site, port):
        # Without the trailing slash nginx redirects, so relative URLs resolve under /app/.
        tab = open_tab(f"http://127.0.0.1:{port}/app")
        assert tab.page.url == f"http://127.0.0.1:{port}/app/"
        use_every_section(tab, FULL)
        paths = {re.sub(r"^\w+://[^/]+", "", url) for url in tab.requests}
        assert all(path.startswith("/app") for path in paths), paths
        assert paths >= {
            "/app",
            "/app/",
            "/app/static/style.css",
            "/app/static/log.js",
            "/app/static/chunks.js",
            "/app/static/websocket.js",
            "/app/static/events.js",
            "/app/stream",
            "/app/fetch",
            "/app/events",
            "/app/websocket",
        }
        tab.assert_quiet()


@pytest.mark.parametrize("context", having("use_chat"), ids=combination_id)
def test_two_tabs_chat_with_each_other(bakes, open_tab, context):
    url = bakes.server(context).url
    first, second = open_tab(url), open_tab(url)
    room = f"tabs-{time.monotonic_ns()}"
    for tab in (first, second):
        tab.page.get_by_label("Room").fill(room)
        tab.page.get_by_role("button", name="Join").click()
        expect(tab.page.locator("#chat-status")).to_contain_text(f"In room “{room}”")

    for speaker, listener, text in [(first, second, "hello from tab one"), (second, first, XSS)]:
        say = speaker.page.get_by_label("Say")
        say.fill(text)
        say.press("Enter")
        for tab in (speaker, listener):
            expect(tab.page.locator("#chat-log li .text").last).to_have_text(text)
    assert first.page.locator("#chat-log img").count() == 0
    for tab in (first, second):
        tab.assert_quiet()


@pytest.mark.parametrize("context", [c for c in having("use_chat") if not c["use_websocket"]], ids=combination_id)
def test_switching_rooms_leaves_no_long_poll_behind(bakes, open_tab, context):
    """Each room's long poll waits up to 25 s; one left parked per room switch would use up the
    browser's six connections to the host, and the next message could not even be posted."""
    tab = open_tab(bakes.server(context).url)
    for n in range(8):
        room = f"switch-{n}-{time.monotonic_ns()}"
        tab.page.get_by_label("Room").fill(room)
        tab.page.get_by_role("button", name="Join").click()
        expect(tab.page.locator("#chat-status")).to_contain_text(f"In room “{room}”")
    say = tab.page.get_by_label("Say")
    say.fill("still connected")
    say.press("Enter")
    expect(tab.page.locator("#chat-log li .text").last).to_have_text("still connected")
    tab.assert_quiet()


def post_message(url: str, room: str, text: str, timeout: float = 20.0) -> dict:
    """POST a chat message, retrying while the server (or its Redis) comes back."""
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(f"{url}chat/{room}", data=json.dumps({"text": text}).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())
        except (urllib.error.HTTPError, OSError) as error:
            retry = isinstance(error, OSError) and not isinstance(error, urllib.error.HTTPError)
            if not (retry or error.code == 503) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("context", having("use_chat"), ids=combination_id)
def test_chat_page_keeps_its_cursor_across_a_restart(bakes, open_tab, tmp_path, context):
    """The memory broker restarts with the server, the Redis one with Redis (no persistence):
    the page comes back with its cursor, says that earlier messages are gone, and shows every
    message posted after, each once."""
    redis = RedisProcess().start() if context["broker"] == "redis" and REDIS else None
    if context["broker"] == "redis" and redis is None:
        pytest.skip("the Redis chat broker needs redis-server: apt-get install redis-server")
    env = {"REDIS_URL": redis.url} if redis else {}
    server = Server(bakes.project(context), tmp_path, port=free_port(), env=env, shutdown_timeout="1").start()
    try:
        tab = open_tab(server.url)
        room = f"restart-{time.monotonic_ns()}"
        tab.page.get_by_label("Room").fill(room)
        tab.page.get_by_role("button", name="Join").click()
        expect(tab.page.locator("#chat-status")).to_contain_text(f"In room “{room}”")
        texts = tab.page.locator("#chat-log li .text")
        for text in ("before one", "before two"):
            post_message(server.url, room, text)
        expect(texts).to_have_text(["before one", "before two"])

        if redis:
            redis.stop()
            redis.start()  # empty: no persistence
        else:
            assert server.stop() == 0, server.log
            server.start()
        for text in ("after one", "after two", "after three"):
            post_message(server.url, room, text)

        # An EventSource comes back after its retry delay (3 s), a WebSocket with its backoff.
        expect(texts).to_have_text(
            ["before one", "before two", "after one", "after two", "after three"], timeout=TIMEOUT_MS
        )
        expect(tab.page.locator("#chat-log li.meta")).to_have_count(1)
        expect(tab.page.locator("#chat-log li.meta")).to_contain_text("earlier messages are no longer available")
        tab.page.wait_for_timeout(500)  # nothing arrives twice, even late
        expect(texts).to_have_count(5)
        tab.assert_quiet()
    finally:
        server.stop()
        if redis:
            redis.stop()


def test_the_page_shows_the_project_name_exactly(bakes, open_tab):
    """The name has quotes, markup, an ampersand, an emoji: HTML escapes them, the page shows them."""
    tab = open_tab(bakes.server(ODD_NAMED).url)
    assert tab.page.title() == ODD_NAME
    expect(tab.page.get_by_role("heading", level=1)).to_have_text(ODD_NAME)
    check_stream(tab)
    tab.assert_quiet()

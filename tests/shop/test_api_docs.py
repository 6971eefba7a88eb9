"""The API docs work offline: Swagger UI and ReDoc load from this app alone.

Both pages are served by a live server with DEBUG off (pytest-django serves
static files through django.contrib.staticfiles there). Two checks:

- what the pages reference: every src/href/url in their HTML, their inline
  scripts and styles, and the styles they link is relative or same-origin;
- what a real browser does: Debian's chromium, with every host name but the
  live server's made unresolvable, renders every operation of the schema,
  and its network log shows no request from the page to another host
  (the vendor bundles are minified code, so this is what checks them).

Without chromium the browser tests skip and say why; CI sets
REQUIRE_BROWSER=1 (.ci/run), which turns the skip into a failure.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import urlopen

import pytest
from django.templatetags.static import static

from tests.dbs import ALL_DATABASES

# live_server needs a transactional database; nothing here writes a row.
pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

DOCS_PAGES = ["/api/docs/", "/api/redoc/"]
NETWORK_SCHEMES = {"http", "https", "ws", "wss", "ftp"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# Attributes whose value is a URL the browser may fetch or navigate to.
URL_ATTRIBUTES = {"src", "href", "action", "formaction", "poster", "data", "spec-url"}

CSS_URL = re.compile(
    r"""url\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^)'"\s]*))\s*\)"""
    r"""|@import\s+(?:"([^"]*)"|'([^']*)')""",
    re.IGNORECASE,
)
JS_STRING = re.compile(
    r""""((?:[^"\\\n]|\\.)*)"|'((?:[^'\\\n]|\\.)*)'|`((?:[^`\\]|\\.)*)`"""
)
JS_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})|\\(.)")
# A string that names a host: "scheme://host" or protocol-relative "//host".
JS_HOST_URL = re.compile(r"^\s*(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//[^/\s]")

CHROMIUM_TIMEOUT = 90  # seconds of real time for one page, start to exit
VIRTUAL_TIME_BUDGET_MS = 30_000  # the page's own timers; network waits are extra


class _References(HTMLParser):
    """URLs an HTML page references, and its inline scripts and styles."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls = []  # (tag, attribute, value)
        self.scripts = []  # same-page script sources (src) in document order
        self.stylesheets = []
        self.inline_scripts = []
        self.inline_styles = []
        self._inline = None
        self._text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if value is None:
                continue
            if name in URL_ATTRIBUTES:
                self.urls.append((tag, name, value))
            elif name in {"srcset", "imagesrcset"}:
                for candidate in value.split(","):
                    if candidate.strip():
                        self.urls.append((tag, name, candidate.split()[0]))
            elif name == "style":
                self.urls += [(tag, "style", url) for url in css_urls(value)]
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            target = re.search(r"url\s*=\s*(\S+)", attrs.get("content") or "", re.I)
            if target:
                self.urls.append((tag, "content", target.group(1).strip("'\"")))
        if tag == "script":
            if attrs.get("src"):
                self.scripts.append(attrs["src"])
            else:
                self._inline, self._text = self.inline_scripts, []
        elif tag == "style":
            self._inline, self._text = self.inline_styles, []
        elif tag == "link" and "stylesheet" in (attrs.get("rel") or "").split():
            self.stylesheets.append(attrs.get("href"))

    def handle_data(self, data):
        if self._inline is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag in {"script", "style"} and self._inline is not None:
            self._inline.append("".join(self._text))
            self._inline = None


def css_urls(css):
    """Every url(...) and @import target in a style sheet or style attribute."""
    return [
        next(g for g in match.groups() if g is not None)
        for match in CSS_URL.finditer(css)
    ]


def js_host_urls(script):
    """String literals in a script that name a host (escapes decoded)."""

    def unescape(match):
        code = match.group(1) or match.group(2)
        return chr(int(code, 16)) if code else match.group(3)

    found = []
    for match in JS_STRING.finditer(script):
        literal = next(g for g in match.groups() if g is not None)
        value = JS_ESCAPE.sub(unescape, literal)
        if JS_HOST_URL.match(value):
            found.append(value)
    return found


def origin(url):
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def is_external(url, base):
    """True when fetching `url` (relative to `base`) would leave base's origin."""
    resolved = urljoin(base, url.strip())
    parts = urlsplit(resolved)
    return parts.scheme.lower() in NETWORK_SCHEMES and origin(resolved) != origin(base)


def fetch(url):
    with urlopen(url, timeout=30) as response:
        assert response.status == 200, f"{url} answered {response.status}"
        return response.read().decode("utf-8"), response.headers.get_content_type()


def served_schema(live_server):
    body, _ = fetch(f"{live_server.url}/api/schema/?format=json")
    return json.loads(body)


@pytest.mark.parametrize("page", DOCS_PAGES)
def test_docs_page_references_nothing_on_another_host(live_server, page):
    page_url = live_server.url + page
    html, content_type = fetch(page_url)
    assert content_type == "text/html"
    refs = _References()
    refs.feed(html)
    refs.close()

    external = [
        f"<{tag} {attr}> {url}"
        for tag, attr, url in refs.urls
        if is_external(url, page_url)
    ]
    for style in refs.inline_styles:
        external += [
            f"<style> {u}" for u in css_urls(style) if is_external(u, page_url)
        ]
    for script in refs.inline_scripts:
        external += [
            f"<script> {u}" for u in js_host_urls(script) if is_external(u, page_url)
        ]

    assert refs.scripts, f"{page} loads no script: is it still Swagger UI / ReDoc?"
    vendor = urljoin(page_url, static("drf_spectacular_sidecar/"))
    for src in refs.scripts:
        script_url = urljoin(page_url, src)
        if is_external(script_url, page_url):
            continue  # already listed above
        script, _ = fetch(script_url)  # served, not a 404 with DEBUG off
        # The app's own scripts (a split-out init script, say) are checked
        # here; the minified vendor bundles mention hosts in strings they
        # never fetch, so the browser test below checks them by their traffic.
        if not script_url.startswith(vendor):
            external += [
                f"{src}: {u}"
                for u in js_host_urls(script)
                if is_external(u, script_url)
            ]
    for href in refs.stylesheets:
        css_url = urljoin(page_url, href)
        if is_external(css_url, page_url):
            continue
        css, content_type = fetch(css_url)
        assert content_type == "text/css", css_url
        external += [f"{href}: {u}" for u in css_urls(css) if is_external(u, css_url)]

    assert external == [], f"{page} references other hosts: {external}"


# --- In a real browser ---------------------------------------------------------


@pytest.fixture
def chromium():
    path = shutil.which("chromium")
    if path is None:
        reason = (
            "chromium is not installed: `apt-get install chromium` runs the "
            "headless-browser checks of the API docs"
        )
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (REQUIRE_BROWSER=1 makes them mandatory)")
        pytest.skip(reason)
    return path


class _Rendered(HTMLParser):
    """What Swagger UI and ReDoc drew: operations as (METHOD, path), section ids."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.operations = set()
        self.sections = set()
        self._method = None
        self._reading_method = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if "opblock-summary-method" in classes:
            self._reading_method, self._method = True, ""
        elif "opblock-summary-path" in classes and self._method:
            self.operations.add((self._method.strip(), attrs.get("data-path")))
            self._method = None
        if attrs.get("data-section-id"):
            self.sections.add(attrs["data-section-id"])

    def handle_data(self, data):
        if self._reading_method:
            self._method += data

    def handle_endtag(self, tag):
        self._reading_method = False


def render(chromium, url):
    """Load `url` headless with no other host reachable: (DOM, page requests)."""
    host = urlsplit(url).hostname
    with tempfile.TemporaryDirectory(prefix="shop-chromium-") as profile:
        netlog = Path(profile) / "netlog.json"
        command = [
            chromium,
            "--headless",
            "--no-sandbox",  # chromium refuses to run as root (CI) without it
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            # Offline by construction: any other host name fails to resolve.
            f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {host}",
            f"--log-net-log={netlog}",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
            "--dump-dom",
            url,
        ]
        # A session of its own, so that a timeout ends chromium's helper
        # processes too, not only the first one.
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            dom, errors = process.communicate(timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"chromium did not finish {url} within {CHROMIUM_TIMEOUT}s")
        assert process.returncode == 0, f"chromium failed on {url}:\n{errors[-2000:]}"
        return dom, page_requests(netlog.read_text(), url)


def page_requests(netlog_text, page_url):
    """URLs the page itself asked for, from chromium's network log.

    The browser's own background requests (update checks, sign-in) name no
    initiator; everything the page, its scripts and its workers fetch names
    the page's origin.
    """
    netlog = json.loads(netlog_text)
    start_job = netlog["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    scheme, netloc = origin(page_url)
    page_origin = f"{scheme}://{netloc}"
    return [
        event["params"]["url"]
        for event in netlog["events"]
        if event["type"] == start_job
        and event.get("params", {}).get("initiator") == page_origin
        and "url" in event["params"]
    ]


def assert_only_own_origin(requests, page_url):
    # The schema is fetched by script: no entry for it means the log no longer
    # shows the page's requests, and the check below would pass on nothing.
    assert urljoin(page_url, "/api/schema/") in requests, requests
    elsewhere = [url for url in requests if is_external(url, page_url)]
    assert elsewhere == [], f"the page requested other hosts: {elsewhere}"


def test_swagger_ui_renders_every_operation_offline(chromium, live_server):
    url = f"{live_server.url}/api/docs/"
    dom, requests = render(chromium, url)
    drawn = _Rendered()
    drawn.feed(dom)

    assert {
        ("GET", "/api/v1/products/"),
        ("POST", "/api/v1/checkout/"),
    } <= drawn.operations, (
        f"Swagger UI did not draw the operations; the DOM starts with: {dom[:1500]}"
    )
    expected = {
        (method.upper(), path)
        for path, item in served_schema(live_server)["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert drawn.operations == expected
    assert_only_own_origin(requests, url)


def test_redoc_renders_every_operation_offline(chromium, live_server):
    url = f"{live_server.url}/api/redoc/"
    dom, requests = render(chromium, url)
    drawn = _Rendered()
    drawn.feed(dom)

    expected = {
        f"operation/{operation['operationId']}"
        for item in served_schema(live_server)["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }
    assert expected, "the schema has no operations"
    assert {s for s in drawn.sections if s.startswith("operation/")} == expected, (
        f"ReDoc did not draw every operation; the DOM starts with: {dom[:1500]}"
    )
    assert_only_own_origin(requests, url)

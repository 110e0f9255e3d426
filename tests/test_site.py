"""The course website builds without a warning, and its pages work in a real browser with nothing from outside.

The site is built once for the module (about half a minute: the notebooks are converted, not run).
The browser tests use Debian's chromium and chromium-driver through Selenium and skip, saying
so, where they are missing.
"""

import functools
import http.server
import importlib.util
import json
import pathlib
import re
import shutil
import subprocess
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS_EXTRA = 'pip install -e ".[docs]"'

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason=f"mkdocs is not installed: {DOCS_EXTRA} (the dev extra includes it)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site's folder; the build runs in a scratch folder, so mkdocs-jupyter's cache stays out of the repository."""
    scratch = tmp_path_factory.mktemp("mkdocs")
    out = scratch / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(out)]
    result = subprocess.run(command, cwd=scratch, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-4000:]}"
    return out


def tutorial_pages(site):
    return sorted(site.glob("tutorials/[0-9][0-9]_*/index.html"))


def test_site_builds_with_every_notebook(site):
    notebooks = sorted(path.stem for path in (ROOT / "tutorials").glob("[0-9][0-9]_*.ipynb"))
    assert [page.parent.name for page in tutorial_pages(site)] == notebooks
    assert (site / "index.html").is_file() and (site / "api" / "schedule" / "index.html").is_file()


def test_each_tutorial_page_says_what_it_needs_and_links_its_notebook(site):
    for page in tutorial_pages(site):
        text = page.read_text(encoding="utf-8")
        name = page.parent.name
        assert "<dt>Needs</dt>" in text, f"{name}: no 'Needs' line (its row in tutorials/README.md's table)"
        assert f'href="{name}.ipynb"' in text, f"{name}: no download link"
        assert (page.parent / f"{name}.ipynb").is_file(), f"{name}: the linked .ipynb is not on the site"


# what a page loads by itself (a plain <a href> to arxiv.org is a link the reader may follow, not a request)
LOADS = re.compile(r"<(script|img|iframe|source|audio|video|embed)\b[^>]*?\bsrc=\"([^\"]+)\"|<link\b[^>]*?\bhref=\"([^\"]+)\"", re.IGNORECASE)


def test_no_page_loads_anything_from_another_host(site):
    outside = []
    for page in sorted(site.rglob("*.html")):
        for match in LOADS.finditer(page.read_text(encoding="utf-8")):
            url = match.group(2) or match.group(3)
            if re.match(r"^([a-z][a-z0-9+.-]*:)?//", url, re.IGNORECASE):
                outside.append(f"{page.relative_to(site)}: {url}")
    assert not outside, "pages that load from another host:\n" + "\n".join(outside[:20])


def _browser_tools():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if importlib.util.find_spec("selenium") is None:
        pytest.skip(f"selenium is not installed: {DOCS_EXTRA}")
    if chromium is None or driver is None:
        pytest.skip("no headless browser: Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver; .ci/run does)")
    return chromium, driver


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    """The built site on a local port, by its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = _browser_tools()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root, in containers and CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        # nothing can reach another host even if a page asked: the request still shows in the log below
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _open(driver, url):
    """Load the page, wait for its math, and report what it asked for, what it typeset and what went wrong."""
    driver.get_log("performance"), driver.get_log("browser")  # start both logs afresh
    driver.get(url)
    math = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const count = () => done({
            typeset: document.querySelectorAll("mjx-container").length,
            errors: Array.from(document.querySelectorAll("mjx-merror")).map(e => e.getAttribute("data-mjx-error") || e.textContent),
            mathjax: !!(window.MathJax && window.MathJax.startup),
        });
        if (window.MathJax && window.MathJax.startup) { window.MathJax.startup.promise.then(count, count); } else { count(); }
        """
    )
    images = driver.execute_script(
        "return Array.from(document.images).map(i => ({src: i.currentSrc.slice(0, 120), ok: i.complete && i.naturalWidth > 0}));"
    )
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    console = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return math, images, requests, console


def _check_page(driver, base, path):
    math, images, requests, console = _open(driver, base + path)
    assert math["mathjax"], f"{path}: MathJax did not load"
    assert math["typeset"] > 0, f"{path}: no math typeset (no mjx-container)"
    assert not math["errors"], f"{path}: TeX errors: {math['errors'][:5]}"
    assert images, f"{path}: no <img> at all"
    broken = [image["src"] for image in images if not image["ok"]]
    assert not broken, f"{path}: images that did not load: {broken}"
    outside = [url for url in requests if not url.startswith(base) and not re.match(r"^(data|blob|about):", url)]
    assert not outside, f"{path}: requests that left the site: {outside}"
    assert any("mathjax" in url for url in requests if url.startswith(base)), f"{path}: MathJax was not served by the site"
    assert not console, f"{path}: console errors: {console}"


def test_home_page_in_a_browser(site, served, browser):
    _check_page(browser, served, "")


def test_a_tutorial_page_in_a_browser(site, served, browser):
    first = tutorial_pages(site)[0].parent.name
    _check_page(browser, served, f"tutorials/{first}/")

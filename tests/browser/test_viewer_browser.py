"""``onlstm serve`` end to end in a real headless Chromium (Selenium through the system's
chromium and chromedriver: no browser download). The server is started as a user would, with
the command line, on a tiny model and a small treebank; the test types sentences, checks the
drawn SVG (one leaf per word, one bar per word and layer), opens a treebank sentence and
checks its marked constituents against the API. Screenshots are saved as test artefacts in
``$ONLSTM_ARTEFACTS/browser`` (default ``test-artefacts/browser`` at the repository root)."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the viewer needs FastAPI and uvicorn: pip install 'onlstm[serve]'")
pytest.importorskip("uvicorn", reason="the viewer needs FastAPI and uvicorn: pip install 'onlstm[serve]'")
pytest.importorskip("selenium", reason="the browser tests drive Chromium with Selenium: pip install 'onlstm[test]'")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (StaleElementReferenceException, TimeoutException,  # noqa: E402
                                        WebDriverException)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from serve_helpers import free_port, write_tiny_model, write_treebank  # noqa: E402

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("no Chromium/ChromeDriver on this machine; install them with `apt-get install chromium "
                "chromium-driver` (Debian; .ci/run does this) to run the browser tests", allow_module_level=True)

ARTEFACTS = Path(os.environ.get("ONLSTM_ARTEFACTS", Path(__file__).resolve().parents[2] / "test-artefacts")) / "browser"


def _get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    model, treebank = write_tiny_model(root / "tiny"), write_treebank(root / "small.mrg")
    port = free_port()
    log = open(root / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "onlstm", "serve", "--model", str(model), "--treebank",
                             str(treebank), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(url + "api/models")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"onlstm serve did not start: {log.read()}")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as err:
        pytest.fail(f"Chromium at {CHROMIUM} with {CHROMEDRIVER} did not start: {err.msg}")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait(driver, condition, timeout=120):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
                             ).until(lambda d: condition(d))
    except TimeoutException:
        driver.save_screenshot(str(ARTEFACTS / "timeout.png"))
        raise


def cards(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#parse-results .card")


def test_parse_view(server, browser):
    browser.get(server)
    wait(browser, lambda d: len(cards(d)) == 2)  # the page parses its example sentences on start
    text = browser.find_element(By.ID, "text")
    text.clear()
    text.send_keys("The cat sat on the mat.")
    text.send_keys(Keys.ENTER)
    text.send_keys("A dog ran away, the company said")
    browser.find_element(By.ID, "parse-button").click()
    wait(browser, lambda d: "cat" in cards(d)[0].find_element(By.TAG_NAME, "h3").text)
    found = cards(browser)
    assert len(found) == 2
    for card, words in zip(found, (["The", "cat", "sat", "on", "the", "mat"],
                                   ["A", "dog", "ran", "away", "the", "company", "said"])):
        assert [e.text for e in card.find_elements(By.CSS_SELECTOR, "svg .leaf")] == words
        assert len(card.find_elements(By.CSS_SELECTOR, "svg .bar[data-layer]")) == 3 * len(words)
        assert len(card.find_elements(By.CSS_SELECTOR, "svg .bar.chosen[data-layer='2']")) == len(words)
        assert card.find_element(By.CSS_SELECTOR, "pre").text.count("(") == len(words) - 1  # bracketed, binary
    assert "punctuation dropped: ." in found[0].text and "punctuation dropped: ," in found[1].text
    browser.save_screenshot(str(ARTEFACTS / "parse.png"))

    Select(browser.find_element(By.ID, "layer")).select_by_value("mean")
    Select(browser.find_element(By.ID, "distance")).select_by_value("input")
    browser.find_element(By.ID, "parse-button").click()
    wait(browser, lambda d: "mean" in cards(d)[0].text)
    assert len(cards(browser)[0].find_elements(By.CSS_SELECTOR, "svg .bar.chosen")) == 3 * 6

    text.clear()
    browser.find_element(By.ID, "parse-button").click()
    error = wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed() and d.find_element(By.ID, "error"))
    assert "empty" in error.text
    browser.save_screenshot(str(ARTEFACTS / "parse-error.png"))


def test_treebank_view(server, browser):
    browser.get(server)
    wait(browser, lambda d: len(cards(d)) == 2)
    browser.find_element(By.ID, "tab-treebank").click()
    Select(browser.find_element(By.ID, "tb-name")).select_by_value("small")
    rows = wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tb-table tbody tr")) == 3
                and d.find_elements(By.CSS_SELECTOR, "#tb-table tbody tr"))
    systems = [r.get_attribute("data-system") for r in browser.find_elements(By.CSS_SELECTOR, "#tb-summary tbody tr")]
    assert systems == ["layer 1", "layer 2", "layer 3", "mean", "left", "right", "balanced", "random"]
    assert "chosen" in browser.find_element(By.CSS_SELECTOR, "#tb-summary tr[data-system='layer 2']").get_attribute("class")

    # sort by F1, both ways
    header = browser.find_element(By.CSS_SELECTOR, "#tb-table th[data-key='f1']")
    for _ in range(2):
        header.click()
        f1 = [float(td.text) for td in browser.find_elements(By.CSS_SELECTOR, "#tb-table tbody tr td:nth-child(3)")]
        assert f1 in (sorted(f1), sorted(f1, reverse=True)) and len(f1) == 3

    browser.find_element(By.CSS_SELECTOR, "#tb-table tbody tr[data-index='2']").click()
    detail = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#tb-detail .side.predicted svg")
                  and d.find_element(By.ID, "tb-detail"))
    expected = _get(server + "api/treebank/small/sentence/2?layer=2")
    n = len(expected["words"])
    gold = detail.find_element(By.CSS_SELECTOR, ".side.gold svg")
    predicted = detail.find_element(By.CSS_SELECTOR, ".side.predicted svg")
    assert len(gold.find_elements(By.CSS_SELECTOR, ".leaf")) == len(predicted.find_elements(By.CSS_SELECTOR, ".leaf")) == n
    assert len(predicted.find_elements(By.CSS_SELECTOR, ".bar[data-layer]")) == 3 * n

    def marked(svg, kind):
        return sorted([int(x) for x in g.get_attribute("data-span").split("-")]
                      for g in svg.find_elements(By.CSS_SELECTOR, f".node.{kind}"))

    spans = expected["spans"]
    assert marked(gold, "match") == marked(predicted, "match") == spans["matched"]
    assert marked(gold, "miss") == spans["missing"] and marked(predicted, "extra") == spans["extra"]
    assert not marked(gold, "extra") and not marked(predicted, "miss")
    assert len(spans["matched"]) + len(spans["missing"]) == 5  # the gold tree's scored constituents
    assert f"F1 {100 * expected['score']['f1']:.1f}" in detail.text
    assert "matching" in detail.text and "missing" in detail.text and "extra" in detail.text  # the legend
    browser.save_screenshot(str(ARTEFACTS / "treebank.png"))

    # the pager walks the list in its shown order
    browser.find_element(By.ID, "tb-filter").send_keys("dog")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tb-table tbody tr")) == 1)
    browser.find_element(By.CSS_SELECTOR, "#tb-table tbody tr").click()
    wait(browser, lambda d: "Sentence 2 of 3" in d.find_element(By.ID, "tb-detail").text)
    assert not browser.find_element(By.ID, "next").is_enabled()

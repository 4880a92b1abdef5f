#!/usr/bin/env python
"""Developer tool: the README's screenshots of ``onlstm serve`` (docs/img/serve-*.png).

Usage::

    python scripts/screenshots.py [--out docs/img] [--port 8765]

Starts ``onlstm serve`` with the bundled models, drives headless Chromium (Selenium with the
system's chromium and chromedriver, as the browser tests) and saves:

- ``serve-parse.png``: two English sentences parsed by ptb-onlstm (trees over the words,
  the distance bars of every layer under them);
- ``serve-treebank.png``: the bundled WSJ sample scored with ptb-onlstm (the parse-eval
  table), the sentence list sorted, and one sentence's gold and predicted trees side by side;
- ``serve-chinese.png``: a Chinese sentence parsed by zh-onlstm.

The first treebank evaluation parses the whole WSJ sample (under a minute on 2 cores).
Images are written as PNG; ``--max-kb`` reduces the colours with Pillow when available to
keep each below that size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = ("The man who sold the house moved to New York last year.\n"
           "Stock prices rose sharply in early trading after the report.")
CHINESE = "我们在北京的大学学习中文。\n这个城市的经济发展得很快。"


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                json.loads(r.read())
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"onlstm serve did not start (exit {proc.poll()})")
            time.sleep(0.3)


def _shrink(path: Path, max_kb: int) -> None:
    """Reduce a PNG's colours (Pillow, when installed) until it is below ``max_kb``."""
    if path.stat().st_size <= max_kb * 1024:
        return
    try:
        from PIL import Image
    except ImportError:
        print(f"note: {path} is {path.stat().st_size // 1024} KB; install Pillow to shrink it", file=sys.stderr)
        return
    for colors in (256, 128, 64):
        Image.open(path).convert("RGB").quantize(colors=colors).save(path, optimize=True)
        if path.stat().st_size <= max_kb * 1024:
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--max-kb", type=int, default=290)
    args = parser.parse_args(argv)

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        raise SystemExit("needs chromium and chromedriver: apt-get install chromium chromium-driver")
    args.out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "onlstm", "serve", "--port", str(args.port)])
    url = f"http://127.0.0.1:{args.port}/"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1360,900",
                "--force-device-scale-factor=1", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = None
    try:
        _wait_for(url + "api/models", proc)
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        wait = WebDriverWait(driver, 600, poll_frequency=0.5)

        def cards():
            return driver.find_elements(By.CSS_SELECTOR, "#parse-results .card")

        def parse(text: str, first_word: str) -> None:
            box = driver.find_element(By.ID, "text")
            driver.execute_script("arguments[0].value = arguments[1]", box, text)
            driver.find_element(By.ID, "parse-button").click()
            wait.until(lambda d: cards() and first_word in cards()[0].find_element(By.TAG_NAME, "h3").text)

        def shot(name: str) -> None:
            wait.until(lambda d: not d.find_element(By.ID, "status").text)  # nothing in flight
            path = args.out / name
            driver.save_screenshot(str(path))
            _shrink(path, args.max_kb)
            print(f"wrote {path} ({path.stat().st_size // 1024} KB)")

        driver.get(url)
        wait.until(lambda d: len(cards()) == 2)
        driver.set_window_size(1360, 1080)  # both sentences in the picture
        parse(ENGLISH, "man")
        shot("serve-parse.png")
        driver.set_window_size(1360, 900)

        Select(driver.find_element(By.ID, "model")).select_by_value("zh-onlstm")
        parse(CHINESE, "北京")
        shot("serve-chinese.png")

        driver.find_element(By.ID, "tab-treebank").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tb-table tbody tr")) > 100)
        driver.find_element(By.ID, "tb-short").click()  # WSJ10-length sentences: trees that fit side by side
        driver.find_element(By.CSS_SELECTOR, "#tb-table th[data-key='f1']").click()
        rows = driver.find_elements(By.CSS_SELECTOR, "#tb-table tbody tr")
        chosen = next((r for r in rows if 7 <= int(r.find_elements(By.TAG_NAME, "td")[1].text) <= 10
                       and 40 <= float(r.find_elements(By.TAG_NAME, "td")[2].text) <= 70), rows[0])
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", chosen)
        chosen.click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tb-detail .side.predicted svg"))
        driver.set_window_size(1360, 1240)  # the table, the list and the comparison in one picture
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.5)
        shot("serve-treebank.png")
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The web page in a real browser (headless Chromium through Selenium): it loads without console
errors, draws a box per detection, the slider hides low scores, a text file shows the error."""

from __future__ import annotations

import shutil
import time
from importlib import resources
from pathlib import Path

import httpx
import pytest
from tests.serve.conftest import running_server

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):  # .ci/run installs Debian's chromium and chromium-driver
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PICTURE = Path(str(resources.files("darkyolo") / "assets" / "samples" / "dog.jpg"))
SCREENSHOT = Path(__file__).resolve().parents[2] / "runs" / "serve-page.png"


def _browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)


def _boxes(browser) -> int:
    return int(browser.find_element(By.ID, "canvas").get_attribute("data-boxes") or -1)


def _set_slider(browser, value: float) -> None:
    browser.execute_script(
        "const s = document.getElementById('score'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('input'));",
        str(value),
    )


def test_the_page_in_a_browser(tmp_path: Path) -> None:
    with running_server(tmp_path) as url:
        browser = _browser()
        try:
            browser.get(url + "/")
            wait = WebDriverWait(browser, 60)
            wait.until(lambda b: "yolov3-tiny-coco" in b.find_element(By.ID, "model").text)
            browser.find_element(By.ID, "file").send_keys(str(PICTURE))
            wait.until(lambda b: _boxes(b) >= 0)
            answer = httpx.post(f"{url}/v1/detect?conf=0.01", content=PICTURE.read_bytes(), timeout=60).json()  # fmt: skip
            shown = browser.find_element(By.ID, "json").text
            assert '"class_name": "dog"' in shown
            _set_slider(browser, 0)
            assert _boxes(browser) == len(answer["detections"]) > 5
            _set_slider(browser, 0.5)
            high = sum(d["score"] >= 0.5 for d in answer["detections"])
            assert _boxes(browser) == high < len(answer["detections"])
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(SCREENSHOT))  # a CI artefact, not committed
            text = tmp_path / "notes.txt"
            text.write_text("not a picture")
            browser.find_element(By.ID, "file").send_keys(str(text))
            wait.until(lambda b: b.find_element(By.ID, "error").is_displayed())
            error = browser.find_element(By.ID, "error").text
            assert "refused (415)" in error and "not a picture" in error
            time.sleep(0.2)
            logs = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
            # the one expected entry: the browser reports the refused request's 415 itself
            unexpected = [e for e in logs if "415" not in e["message"]]
            assert not unexpected, unexpected
        finally:
            browser.quit()

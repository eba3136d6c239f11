"""The playground page in a real headless chromium: it loads, a message gets an answer, edits render.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/install-browser``); skipped without them.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no chromium / chromedriver binary (apt-get install chromium chromium-driver, see .ci/install-browser)",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_chat_in_the_page_shows_answer_and_edits(live, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(live.url + "/")
    assert browser.title == "editflow playground"
    browser.find_element(By.ID, "api-key").send_keys("test-key")
    browser.execute_script("document.getElementById('delay').value = '5'")
    browser.find_element(By.ID, "steps").clear()
    browser.find_element(By.ID, "steps").send_keys("12")
    browser.execute_script("document.getElementById('guidance').value = '1.5'")  # a slider
    browser.find_element(By.ID, "input").send_keys("Hello there")
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant[data-done='1']")
    )
    box = browser.find_element(By.CSS_SELECTOR, ".msg.assistant")
    final = box.find_element(By.CSS_SELECTOR, ".final")
    assert "Error" not in final.text and final.text.strip()
    assert box.get_attribute("data-finish") in ("stop", "length")
    view = box.find_element(By.CSS_SELECTOR, ".edit-view")
    assert int(view.get_attribute("data-edits")) > 0
    stats = box.find_element(By.CSS_SELECTOR, ".stats").text
    assert "insertions" in stats and "step 12" in stats
    # the user's message is in the log too
    assert browser.find_element(By.CSS_SELECTOR, ".msg.user").text == "Hello there"


def test_wrong_key_shows_an_error(live, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(live.url + "/")
    key = browser.find_element(By.ID, "api-key")
    key.clear()
    key.send_keys("wrong")
    browser.find_element(By.ID, "input").send_keys("Hi")
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant[data-done='1']")
    )
    assert "API key" in browser.find_element(By.CSS_SELECTOR, ".final.error").text

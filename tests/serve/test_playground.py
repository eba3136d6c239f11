"""The playground page in a real headless chromium: it loads, a message gets answered, edits show.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/install-browser``); skipped without them.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no chromium / chromedriver binary "
    "(apt-get install chromium chromium-driver, see .ci/install-browser)",
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
    # usage arrives (include_usage); without a draft there are no prediction counts
    usage = box.find_element(By.CSS_SELECTOR, ".usage").text
    assert "completion tokens" in usage and "draft" not in usage
    assert box.get_attribute("data-accepted") is None


def send_with_draft(browser, url, message, draft, max_tokens=None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    key = browser.find_element(By.ID, "api-key")
    key.clear()
    key.send_keys("test-key")
    browser.execute_script("document.getElementById('delay').value = '0'")
    browser.find_element(By.ID, "steps").clear()
    browser.find_element(By.ID, "steps").send_keys("8")
    if max_tokens is not None:
        browser.find_element(By.ID, "max-tokens").clear()
        browser.find_element(By.ID, "max-tokens").send_keys(str(max_tokens))
    browser.find_element(By.ID, "input").send_keys(message)
    browser.find_element(By.ID, "draft").send_keys(draft)
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant[data-done='1']")
    )
    return browser.find_element(By.CSS_SELECTOR, ".msg.assistant")


def test_a_draft_is_the_first_state_and_its_tokens_are_counted(live, browser, tiny_model_dir):
    from selenium.webdriver.common.by import By
    from transformers import AutoTokenizer

    draft = "The quick brown fox jumps."
    box = send_with_draft(browser, live.url, "Fix my sentence", draft)
    final = box.find_element(By.CSS_SELECTOR, ".final")
    assert "Error" not in final.text, final.text
    view = box.find_element(By.CSS_SELECTOR, ".edit-view")
    # the live view started from the draft: the server made it x0 (prediction reached it)
    assert view.get_attribute("data-start") == draft
    assert int(view.get_attribute("data-edits")) > 0
    assert "draft tokens untouched" in box.find_element(By.CSS_SELECTOR, ".stats").text
    # accepted + rejected prediction tokens = the draft's tokens, shown from usage
    n_draft = len(
        AutoTokenizer.from_pretrained(tiny_model_dir)(draft, add_special_tokens=False).input_ids
    )
    accepted, rejected = (
        int(box.get_attribute("data-accepted")),
        int(box.get_attribute("data-rejected")),
    )
    assert accepted + rejected == n_draft and accepted >= 0 and rejected >= 0
    usage = box.find_element(By.CSS_SELECTOR, ".usage").text
    assert f"{accepted} accepted, {rejected} rejected" in usage
    # the request's message and its draft are in the log; the draft box is emptied
    user = browser.find_element(By.CSS_SELECTOR, ".msg.user")
    assert user.find_element(By.CSS_SELECTOR, ".draft-note").text == "draft: " + draft
    assert browser.find_element(By.ID, "draft").get_attribute("value") == ""


def test_a_draft_over_max_tokens_is_an_error_and_stays_in_its_box(live, browser):
    from selenium.webdriver.common.by import By

    draft = "The quick brown fox jumps over the lazy dog."
    box = send_with_draft(browser, live.url, "Fix it", draft, max_tokens=2)
    error = box.find_element(By.CSS_SELECTOR, ".final.error").text
    assert "prediction" in error and "max_tokens" in error
    assert browser.find_element(By.ID, "draft").get_attribute("value") == draft


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

"""The corrector through the server: the ``correction`` request field.

A bad value, or a model without reverse rates, is a 400 naming ``correction`` before anything
is submitted; the value reaches the sampler; on a real model with reverse rates, correction 0 is
the plain sampler under the same seed, and a corrected request runs the corrector's forwards.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from editflow_serve import ServeSettings, create_app
from editflow_testing import save_tiny_model
from fastapi.testclient import TestClient

from .conftest import MODEL_NAME, LiveServer
from .test_playground import CHROMIUM, DRIVER
from .test_playground import browser as page  # noqa: F401 (the playground tests' browser)

CHAT = "/v1/chat/completions"
MSG = [{"role": "user", "content": "Hi"}]


def client(engine) -> TestClient:
    return TestClient(create_app(engine, ServeSettings(served_model_name="m")))


def with_reverse_rates(engine):
    engine.setup.model = SimpleNamespace(has_reverse_rates=True)
    return engine


@pytest.mark.parametrize("bad", [-0.5, 1000, "big", True])
def test_a_bad_correction_is_400_naming_it(fake_engine, bad):
    body = {"messages": MSG, "correction": bad}
    r = client(with_reverse_rates(fake_engine)).post(CHAT, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "correction"
    assert fake_engine.seqs == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, {"messages": MSG}),
        ("/v1/completions", {"prompt": "ab"}),
        ("/v1/responses", {"input": "ab"}),
    ],
)
def test_correction_on_a_model_without_reverse_rates_is_400(fake_engine, path, body):
    r = client(fake_engine).post(path, json={**body, "correction": 1.0})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "correction" and "reverse_rates" in error["message"]
    assert fake_engine.seqs == []  # refused before anything was submitted
    for off in (0, 0.0, None):  # off is fine on any model
        assert client(fake_engine).post(path, json={**body, "correction": off}).status_code == 200


def test_correction_reaches_the_sampler_and_defaults_to_off(fake_engine):
    c = client(with_reverse_rates(fake_engine))
    assert c.post(CHAT, json={"messages": MSG}).status_code == 200
    assert c.post(CHAT, json={"messages": MSG, "correction": 0.5}).status_code == 200
    assert [s.params.correction for s in fake_engine.seqs] == [0.0, 0.5]


@pytest.fixture(scope="module")
def reverse_server(tmp_path_factory):
    path = save_tiny_model(tmp_path_factory.mktemp("models") / MODEL_NAME, reverse_rates=True)
    with LiveServer(path, max_running=8, max_queued=8) as server:
        yield server


def test_correction_zero_is_the_plain_sampler_on_a_model_with_reverse_rates(reverse_server):
    """Same seed, same text and usage with correction 0 as without it; a corrected request
    takes more forwards than steps (the corrector's) and is reproducible per seed too."""
    c = reverse_server.client()

    def ask(**extra):
        out = c.completions.create(
            model=MODEL_NAME, prompt="ab", seed=5, max_tokens=16, n=2,
            extra_body={"steps": 8, **extra},
        )  # fmt: skip
        return [ch.text for ch in out.choices], out.usage.model_extra["editflow"]

    plain, plain_usage = ask()
    assert ask(correction=0) == (plain, plain_usage)
    assert plain_usage["forward_passes"] == plain_usage["steps"] == 16
    corrected, usage = ask(correction=2.0)
    assert usage["forward_passes"] > usage["steps"] == 16
    assert ask(correction=2.0) == (corrected, usage)


def page_correction_control(browser, url):
    """Open the playground with the API key; the correction control once the page knows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    key = browser.find_element(By.ID, "api-key")
    key.clear()
    key.send_keys("test-key")
    browser.execute_script("document.getElementById('api-key').dispatchEvent(new Event('change'))")
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.ID, "correction-control").get_attribute("data-known") == "1"
    )
    return browser.find_element(By.ID, "correction-control")


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no chromium / chromedriver binary")
def test_the_playground_hides_correction_for_a_model_without_reverse_rates(live, page):  # noqa: F811
    assert not page_correction_control(page, live.url).is_displayed()


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no chromium / chromedriver binary")
def test_the_playground_slider_sends_correction(reverse_server, page):  # noqa: F811
    browser = page
    """Shown for a model with reverse rates; its value goes out as ``correction``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    control = page_correction_control(browser, reverse_server.url)
    assert control.is_displayed() and "a_t = c t (1 - t)" in control.get_attribute("title")
    browser.execute_script(
        "window.sent = []; const f = window.fetch;"
        "window.fetch = (u, o) => { if (o && o.body) window.sent.push(JSON.parse(o.body));"
        " return f(u, o); };"
        "document.getElementById('correction').value = '1.5';"
        "document.getElementById('delay').value = '0';"
    )
    browser.find_element(By.ID, "steps").clear()
    browser.find_element(By.ID, "steps").send_keys("8")
    browser.find_element(By.ID, "input").send_keys("Hello there")
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant[data-done='1']")
    )
    final = browser.find_element(By.CSS_SELECTOR, ".msg.assistant .final").text
    assert "Error" not in final and final.strip()
    (body,) = browser.execute_script("return window.sent")
    assert body["correction"] == 1.5

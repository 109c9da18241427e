"""The web console in a real browser (the distribution's headless Chromium, driven by Selenium
through its chromedriver): log in with a token, meet a policy in the submission form, submit a
training, watch it complete, open its trace. Screenshots go to screenshots/ (not committed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from berth.cli.suite import Suite
from tests.e2e.api_client import bearer_token, client
from tests.e2e.conftest import Cli, grant

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).parents[2] / "screenshots"
USER = "console-user@example.com"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_submit_a_training_through_the_form_and_follow_it(
    browser: WebDriver, suite: Suite, cli: Cli
) -> None:
    # The console's user sets a policy before using the form: an administrator.
    grant(cli, USER, "System administrator")
    token = bearer_token(cli, USER)
    meta = {"scope": "project", "projectId": "team-b", "name": "console-test"}
    policy = {
        "defaults": {"imagePullPolicy": "IfNotPresent"},
        "rules": {
            "imagePullPolicy": {"canEdit": False},
            "compute": {"gpuDevicesRequest": {"max": 1}},
        },
    }
    with client(suite.api_url, token) as api:
        assert (
            api.put("/api/v2/policy/trainings", json={"meta": meta, "policy": policy}).status_code
            == 200
        )
        try:
            _journey(browser, suite.api_url, token)
        finally:
            api.delete(
                "/api/v2/policy/trainings", params={"scope": "project", "projectId": "team-b"}
            )


def _journey(driver: WebDriver, base: str, token: str) -> None:
    wait = WebDriverWait(driver, 45)
    driver.get(f"{base}/console/")
    wait.until(ec.presence_of_element_located((By.ID, "token"))).send_keys(token)
    driver.find_element(By.ID, "login").click()
    wait.until(ec.presence_of_element_located((By.ID, "workloads")))
    assert USER in driver.find_element(By.CLASS_NAME, "user").text

    driver.get(f"{base}/console/new/trainings?project=team-b")
    pull = wait.until(ec.presence_of_element_located((By.ID, "f-imagePullPolicy")))
    assert pull.get_attribute("value") == "IfNotPresent"
    assert pull.get_attribute("readonly") is not None
    assert "locked by project team-b" in driver.page_source
    # The project's cluster, else a connected one: never one whose agent is away.
    cluster = driver.find_element(By.NAME, "clusterId")
    assert cluster.get_attribute("value") == "local", driver.page_source
    driver.find_element(By.ID, "f-name").send_keys("from-the-form")
    driver.find_element(By.ID, "f-image").send_keys("pytorch/pytorch")
    gpus = driver.find_element(By.ID, "f-compute.gpuDevicesRequest")
    gpus.send_keys("2")
    issue = driver.find_element(By.CSS_SELECTOR, '.issue[data-field="compute.gpuDevicesRequest"]')
    # The dry run's compliance issue, named by the policy's scope, beside its field.
    wait.until(lambda _d: "project team-b" in issue.text)
    assert "1" in issue.text
    shot(driver, "form-with-policy-violation")

    gpus.clear()
    gpus.send_keys("1")
    wait.until(lambda _d: issue.text == "")
    driver.find_element(By.ID, "create").click()
    phase = wait.until(ec.presence_of_element_located((By.ID, "phase")))
    try:
        wait.until(lambda _d: phase.text == "Completed")
    except TimeoutException:
        shot(driver, "workload-not-completed")
        history = driver.find_element(By.ID, "history").text
        raise AssertionError(f"still {phase.text} on {driver.current_url}:\n{history}") from None
    workload_url = driver.current_url

    # The spans of the services reach the trace store in batches: the page shows them once
    # there (each reload asks again).
    def waterfall_spans_services(d: WebDriver) -> bool:
        d.get(workload_url)
        labels = [
            e.get_attribute("title") or ""
            for e in d.find_elements(By.CSS_SELECTOR, ".waterfall .span")
        ]
        services = {label.split(":")[0] for label in labels}
        return {"intake", "policy", "scheduler-adapter"} <= services

    wait.until(waterfall_spans_services)
    shot(driver, "workload-trace-waterfall")

    driver.get(f"{base}/console/?project=team-b")
    row = wait.until(
        ec.presence_of_element_located((By.XPATH, "//tr[td/a[text()='from-the-form']]"))
    )
    assert row.find_element(By.CLASS_NAME, "phase").text == "Completed"
    suspend = row.find_element(By.CSS_SELECTOR, 'button[data-action="suspend"]')
    assert not suspend.is_enabled()
    shot(driver, "workloads-table")

    driver.get(f"{base}/console/catalog?project=team-b")
    policies = wait.until(ec.presence_of_element_located((By.ID, "policies")))
    assert policies.text == "Effective policies of project team-b"
    assert "compute.gpuDevicesRequest" in driver.page_source
    team_b = driver.find_element(By.XPATH, "//table[@id='projects']//tr[td[1]='team-b']")
    assert team_b.find_elements(By.TAG_NAME, "td")[1].text == "research"
    shot(driver, "projects-and-policies")

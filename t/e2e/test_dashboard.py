"""discovery_ui: the dashboard in headless Chromium, against the real API
(discovery_api write=on) of a gateway in front of the example services.

It loads, lists the services, explains a request, disables a route from the
route table and sees the gateway answer 404 for it, then removes the
override and sees the route work again; rows are updated in place (the same
elements, focus kept, the filter kept) and the page logs no error (a CSP
violation or a script error would be one).  With DASHBOARD_SCREENSHOT=PATH
it saves a screenshot there (docs/dashboard.png in the README).
"""

import os

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By

from support import NGINX_CONF, Gateway, wait_until

CHROMEDRIVER = "/usr/bin/chromedriver"
UI = "/_discovery/ui"

# the example gateway, with the API and the dashboard next to the status page
DASHBOARD_CONF = NGINX_CONF.replace("""        location = /_discovery {{""", """\
        location /_discovery/api/ {{
            allow  127.0.0.1;
            deny   all;
            discovery_api  write=on;
        }}

        location = /_discovery/ui {{
            allow  127.0.0.1;
            deny   all;
            discovery_ui;
        }}

        location = /_discovery {{""", 1)
assert DASHBOARD_CONF != NGINX_CONF


@pytest.fixture(scope="module")
def dashboard_gateway(services, tmp_path_factory):
    nginx = Gateway(tmp_path_factory.mktemp("dashboard"), services.values(),
                    template=DASHBOARD_CONF, workers=2)
    try:
        nginx.start_healthy()
        yield nginx
    finally:
        nginx.stop()


@pytest.fixture(scope="module")
def browser():
    # build.sh installs it (chromium-driver): missing is a failure, not a skip
    assert os.path.exists(CHROMEDRIVER), f"{CHROMEDRIVER} is missing: make deps"
    options = webdriver.ChromeOptions()
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(what, predicate, timeout=10.0):
    """predicate() until true, ignoring an element not there yet or replaced
    meanwhile."""
    def attempt():
        try:
            return predicate()
        except (NoSuchElementException, StaleElementReferenceException):
            return False
    return wait_until(attempt, timeout=timeout, message=what)


def cells(row):
    return [td.text for td in row.find_elements(By.TAG_NAME, "td")]


def route_row(driver, service, path):
    for row in driver.find_elements(By.CSS_SELECTOR, "#routes tbody tr"):
        texts = cells(row)
        if texts[0] == path and texts[2] == service:
            return row
    return None


def errors_logged(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_dashboard(dashboard_gateway, browser):
    driver = browser
    gateway = httpx.Client(base_url=dashboard_gateway.url, timeout=5)

    # served with its headers, then it loads and lists the services
    page = gateway.get(UI)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["content-security-policy"]

    driver.get(dashboard_gateway.url + UI)
    wait("three services listed, healthy", lambda: sorted(
        cells(row)[0].split("\n")[0] + " " + cells(row)[1]
        for row in driver.find_elements(By.CSS_SELECTOR, "#services tbody tr"))
        == ["billing healthy", "chat healthy", "users healthy"])
    assert "writable" in driver.find_element(By.ID, "info").text
    # write=on: the override controls are shown
    assert driver.find_element(By.ID, "override-form").is_displayed()

    # explain a request
    method = driver.find_element(By.ID, "explain-method")
    method.clear()
    method.send_keys("GET")
    driver.find_element(By.ID, "explain-path").send_keys("/users/1")
    driver.find_element(By.CSS_SELECTOR, "#explain-form button[type=submit]").click()
    wait("the explain answer", lambda: driver.find_element(By.ID, "explain-status").text == "200")
    answer = driver.find_element(By.ID, "explain-result").text
    assert "users" in answer and "/users/{user_id}" in answer
    candidates = [cells(row) for row in
                  driver.find_elements(By.CSS_SELECTOR, "#explain-candidates tbody tr")]
    assert ["users", "/users/{user_id}"] in [c[:2] for c in candidates if c[3] == "won"]

    # the filter hides other services' routes and stays through refreshes
    box = driver.find_element(By.ID, "filter")
    box.send_keys("users")
    wait("the filter applied", lambda: all(
        "users" in " ".join(cells(row)) for row in
        driver.find_elements(By.CSS_SELECTOR, "#routes tbody tr") if row.is_displayed()))

    # disable /users/{user_id} from its row: the gateway answers 404
    assert gateway.get("/users/1").status_code == 200
    row = wait("the /users/{user_id} row", lambda: route_row(driver, "users", "/users/{user_id}"))
    button = row.find_element(By.TAG_NAME, "button")
    assert button.text == "Disable"
    button.click()
    wait("the override shown in the same row", lambda: "disable" in cells(row)[5])
    disabled = wait_until(lambda: gateway.get("/users/1"),
                          lambda r: r.status_code == 404, timeout=5,
                          message="GET /users/1 answering 404")
    assert disabled.json()["detail"] == "Endpoint disabled"

    # updated in place: same row and button, focus and filter kept
    assert button.text == "Remove override"
    assert driver.switch_to.active_element == button
    assert box.get_attribute("value") == "users"

    # explain says so too
    driver.find_element(By.CSS_SELECTOR, "#explain-form button[type=submit]").click()
    wait("the explain answer after the override",
         lambda: driver.find_element(By.ID, "explain-status").text == "404")

    shot = os.environ.get("DASHBOARD_SCREENSHOT")
    if shot:
        box.clear()
        box.send_keys(" ")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, height + 100)
        driver.execute_script("document.activeElement.blur()")
        driver.save_screenshot(shot)
        driver.set_window_size(1280, 1000)

    # remove the override: the route works again
    row = route_row(driver, "users", "/users/{user_id}")
    button = row.find_element(By.TAG_NAME, "button")
    assert button.text == "Remove override"
    button.click()
    wait("the override gone from the row", lambda: cells(row)[5] == "")
    wait_until(lambda: gateway.get("/users/1"), lambda r: r.status_code == 200, timeout=5,
               message="GET /users/1 answering 200 again")

    assert errors_logged(driver) == []

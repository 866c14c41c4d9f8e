"""End-to-end fixtures: the example FastAPI services behind a real nginx.

One session starts chat, users and billing (examples/*.py) on free ports and
nginx (master and 2 workers) with the built module, in a configuration shaped
like nginx.conf.example, and waits until the gateway reports all three
services healthy.  Everything is stopped at the end, even on failure; a failed
test shows the tail of nginx's error.log.
"""

import httpx
import pytest

from support import MODULE, SERVICES, Gateway, Service


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    """{name: Service}: the three example services, running."""
    if not MODULE.exists():
        pytest.fail(f"{MODULE} is missing: run `make module`")
    directory = tmp_path_factory.mktemp("services")
    running = {name: Service(name, directory) for name in SERVICES}
    try:
        for service in running.values():
            service.launch()
        for service in running.values():
            service.wait_ready()
        yield running
    finally:
        for service in running.values():
            service.stop()


@pytest.fixture(scope="session")
def gateway(services, tmp_path_factory):
    """nginx routing to the services, once the status page shows all of them healthy."""
    nginx = Gateway(tmp_path_factory.mktemp("nginx"), services.values(), workers=2)
    try:
        nginx.start_healthy()
        yield nginx
    finally:
        nginx.stop()


@pytest.fixture(scope="session")
def client(gateway):
    """An HTTP client for the gateway; paths are relative to it."""
    with httpx.Client(base_url=gateway.url, timeout=5) as http:
        yield http


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Show the tail of nginx's error.log under a failed test."""
    outcome = yield
    report = outcome.get_result()
    nginx = item.funcargs.get("gateway") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(nginx, Gateway):
        report.sections.append(("nginx error.log (tail)", nginx.error_log_tail()))

"""A service that goes down answers 503, and is routed again when it is back."""

import pytest

from support import ALL_HEALTHY, json_body, wait_for_status

# interval=1s and fails=1: a few seconds are plenty either way
DEADLINE = 10.0


@pytest.fixture
def users(services, gateway):
    """The users service; running and healthy again after the test, whatever happened."""
    service = services["users"]
    yield service
    if service.proc.poll() is not None:
        service.start()
    gateway.wait_for_states(ALL_HEALTHY, timeout=DEADLINE)


def test_service_down_then_back(client, gateway, users):
    users.stop()
    # nginx's own 502 until the next poll finds users down, then the module's 503
    down = wait_for_status(client, "/users/42", 503, timeout=DEADLINE)
    assert down.headers["retry-after"] == "1"
    assert json_body(down) == {"detail": "Service unavailable", "path": "/users/42",
                               "service": "users"}
    assert gateway.states() == {"chat": "healthy", "users": "unhealthy", "billing": "healthy"}
    assert client.get("/chat/history/7").status_code == 200

    users.start()
    back = wait_for_status(client, "/users/1", 200, timeout=DEADLINE)
    assert json_body(back) == {"service": "users", "user": {"id": 1, "name": "alice"}}
    assert json_body(client.get("/users/42")) == {"service": "users", "detail": "user 42 not found"}

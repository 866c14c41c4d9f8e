"""$discovery_route_auth marks the routes that declare auth_required."""

import pytest

from support import json_body, route_headers

def case(method, path, route, auth):
    return pytest.param(method, path, route, auth, id=f"{method} {path}")


MARKED = [
    # method, path, X-Discovery-Route, X-Discovery-Auth (None: not set)
    case("POST", "/chat/intelligent", "/chat/intelligent", "1"),
    case("GET", "/users/me", "/users/me", "1"),
    case("POST", "/billing/invoices", "/billing/invoices", "1"),
    case("GET", "/users/1", "/users/{user_id}", None),
    case("GET", "/chat/rooms/lobby", "/chat/rooms/{room}", None),
    # auth_required is per operation: only POST declares security
    case("GET", "/billing/invoices", "/billing/invoices", None),
]


@pytest.mark.parametrize("method, path, route, auth", MARKED)
def test_route_auth_variable(client, method, path, route, auth):
    response = client.request(method, path, json={} if method == "POST" else None)
    assert route_headers(response) == (route, auth)


def test_chat_intelligent_requires_a_bearer_token(client):
    denied = client.post("/chat/intelligent", json={"message": "hi"})
    assert denied.status_code == 403
    assert json_body(denied) == {"service": "chat", "detail": "Not authenticated"}
    assert route_headers(denied) == ("/chat/intelligent", "1")

    allowed = client.post("/chat/intelligent", json={"message": "hi"},
                          headers={"Authorization": "Bearer x"})
    assert allowed.status_code == 200
    assert json_body(allowed) == {"service": "chat", "served_by": "chat",
                                  "authenticated": True, "echo": {"message": "hi"}}
    assert route_headers(allowed) == ("/chat/intelligent", "1")


def test_users_me_requires_a_bearer_token(client):
    denied = client.get("/users/me")
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == "Bearer"
    assert json_body(denied) == {"service": "users", "detail": "Not authenticated"}

    allowed = client.get("/users/me", headers={"Authorization": "Bearer alice"})
    assert allowed.status_code == 200
    assert json_body(allowed) == {"service": "users", "user": {"name": "alice"}}
    assert route_headers(allowed) == ("/users/me", "1")


def test_billing_post_requires_auth_from_openapi_security(client):
    # without a token: nothing is created, the list stays as test_routing expects
    denied = client.post("/billing/invoices", json={"amount": 5})
    assert denied.status_code == 403
    assert json_body(denied) == {"service": "billing", "detail": "Not authenticated"}
    assert route_headers(denied) == ("/billing/invoices", "1")

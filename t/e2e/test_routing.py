"""Requests are routed to the service that publishes their path."""

import pytest

from support import json_body, route_headers

ALICE = {"id": 1, "name": "alice"}
INVOICE_1 = {"id": "inv-1", "amount": 42.0}

ROUTED = [
    # path, status, body, matched route template
    ("/users/42", 404, {"service": "users", "detail": "user 42 not found"}, "/users/{user_id}"),
    ("/users/1", 200, {"service": "users", "user": ALICE}, "/users/{user_id}"),
    ("/users", 200, {"service": "users", "users": [ALICE, {"id": 2, "name": "bob"}]}, "/users"),
    ("/chat/history/7", 200,
     {"service": "chat", "user_id": 7, "messages": ["hello from user 7"]},
     "/chat/history/{user_id:int}"),
    ("/chat/rooms/lobby?x=1", 200, {"service": "chat", "room": "lobby", "members": 3},
     "/chat/rooms/{room}"),
    ("/billing/invoices", 200, {"service": "billing", "invoices": [INVOICE_1]},
     "/billing/invoices"),
    ("/billing/invoices/inv-1", 200, {"service": "billing", "invoice": INVOICE_1},
     "/billing/invoices/{invoice_id}"),
]


@pytest.mark.parametrize("path, status, body, route", ROUTED, ids=[r[0] for r in ROUTED])
def test_get_is_routed_to_the_owner(client, path, status, body, route):
    response = client.get(path)
    assert response.status_code == status
    assert json_body(response) == body
    assert route_headers(response)[0] == route


def test_query_string_is_forwarded(client, services):
    assert client.get("/chat/rooms/lobby?x=1&y=two").status_code == 200
    services["chat"].wait_for_log('"GET /chat/rooms/lobby?x=1&y=two HTTP/1.1" 200')


def test_unknown_path_is_404(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert json_body(response) == {"detail": "Endpoint not available", "path": "/nowhere"}
    assert route_headers(response) == (None, None)


def test_typed_parameter_is_matched_by_the_gateway(client):
    # {user_id:int} does not take "abc": no route, the gateway answers itself
    response = client.get("/chat/history/abc")
    assert response.status_code == 404
    assert json_body(response) == {"detail": "Endpoint not available",
                                   "path": "/chat/history/abc"}


def test_error_body_is_json_whatever_the_path(client):
    response = client.get("/no%22where%5C")
    assert response.status_code == 404
    assert json_body(response) == {"detail": "Endpoint not available", "path": '/no"where\\'}


def test_unpublished_method_is_405_with_allow(client, services):
    response = client.put("/users/42", json={"name": "carol"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, DELETE, OPTIONS"
    assert json_body(response) == {"detail": "Method not allowed", "path": "/users/42",
                                   "service": "users", "allow": "GET, HEAD, DELETE, OPTIONS"}
    assert '"PUT /users/42' not in services["users"].log_text()


def test_head_is_routed_like_get(client, services):
    response = client.head("/users/1")
    # routed (the gateway's own 405 would carry no route and Allow "GET, HEAD, ...")
    assert route_headers(response) == ("/users/{user_id}", None)
    assert response.content == b""
    # FastAPI's APIRoute serves no HEAD: the service itself answers 405
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    services["users"].wait_for_log('"HEAD /users/1 HTTP/1.1" 405')

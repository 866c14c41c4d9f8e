"""The example services publish what the demo and end-to-end tests expect."""

import importlib.util
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return TestClient(module.app)


def summary(client):
    body = client.get("/health?include_routes=true").json()
    return [(r["path"], r["methods"], r["auth_required"], r.get("websocket", False))
            for r in body["routes"]]


def test_chat_service():
    client = load("chat_service")
    assert client.get("/health").json() == {"status": "healthy", "service": "chat", "version": "1.0"}
    assert summary(client) == [
        ("/chat/intelligent", ["POST"], True, False),
        ("/chat/history/{user_id:int}", ["GET"], False, False),
        ("/chat/rooms/{room}", ["GET"], False, False),
        ("/chat/ws", ["GET"], False, True),
    ]
    response = client.post("/chat/intelligent", json={"message": "hi"},
                           headers={"Authorization": "Bearer t"})
    assert response.json() == {"service": "chat", "served_by": "chat",
                               "authenticated": True, "echo": {"message": "hi"}}
    assert client.post("/chat/intelligent", json={}).json()["service"] == "chat"
    assert client.get("/chat/history/7").json()["user_id"] == 7
    assert client.get("/chat/rooms/lobby").json()["service"] == "chat"
    with client.websocket_connect("/chat/ws") as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "chat: hello"


def test_users_service():
    client = load("users_service")
    assert summary(client) == [
        ("/users", ["GET"], False, False),
        ("/users/me", ["GET"], True, False),
        ("/users/{user_id}", ["GET"], False, False),
        ("/users", ["POST"], False, False),
        ("/users/{user_id}", ["DELETE"], False, False),
    ]
    unauthenticated = client.get("/users/me")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
    assert unauthenticated.json()["service"] == "users"
    me = client.get("/users/me", headers={"Authorization": "Bearer alice"})
    assert me.json() == {"service": "users", "user": {"name": "alice"}}
    assert client.get("/users/1").json()["service"] == "users"
    assert client.get("/users/999").status_code == 404


def test_billing_service_is_discovered_through_openapi():
    client = load("billing_service")
    assert client.get("/health").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert sorted((p, m) for p, ops in paths.items() for m in ops) == [
        ("/billing/invoices", "get"),
        ("/billing/invoices", "post"),
        ("/billing/invoices/{invoice_id}", "get"),
    ]
    assert paths["/billing/invoices"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in paths["/billing/invoices"]["get"]
    assert client.get("/billing/invoices").json()["service"] == "billing"
    created = client.post("/billing/invoices", json={"amount": 5},
                          headers={"Authorization": "Bearer t"})
    assert created.status_code == 201
    assert created.json()["service"] == "billing"


@pytest.mark.parametrize("name", ["chat_service", "users_service", "billing_service"])
def test_every_error_names_the_service(name):
    client = load(name)
    service = name.split("_")[0]
    assert client.get("/no/such/path").json() == {"service": service, "detail": "Not Found"}

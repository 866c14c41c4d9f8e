"""What the FastAPI helper publishes is what the gateway routes and the app serves.

mounts_service.py behind the gateway: writes to a WSGI mount and to a
Starlette app wrapped in middleware are routed, HEAD goes to the service
wherever GET is published (FastAPI answers it 405 for an APIRoute), and a
user's POST /health is the user's, and WebDAV methods are routed.
"""

from pathlib import Path

import httpx
import pytest

from support import one_service_gateway, route_headers

MOUNTS = Path(__file__).resolve().parent / "mounts_service.py"
EVERY_METHOD = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with one_service_gateway(tmp_path_factory.mktemp("mounts"), "mounts", MOUNTS) as (nginx, _):
        yield nginx


@pytest.fixture(scope="module")
def client(gateway):
    with httpx.Client(base_url=gateway.url, timeout=5) as http:
        yield http


def test_published_methods_on_the_status_page(gateway):
    [service] = gateway.status()["services"]
    methods = {route["path"]: route["methods"] for route in service["routes"]}
    assert methods == {
        "/api/item": ["GET"],
        "/health": ["POST"],
        "/api/plain": ["GET", "HEAD"],
        "/legacy/{path:path}": EVERY_METHOD,
        "/wrapped/add": ["POST"],
        "/dav/{item}": ["MKCOL", "PROPFIND"],
    }
    assert "unknown method" not in gateway.error_log.read_text()


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
def test_any_method_reaches_the_wsgi_mount(client, method):
    response = client.request(method, "/legacy/anything")
    assert response.status_code == 200
    assert response.text == f"{method} legacy"
    assert route_headers(response)[0] == "/legacy/{path:path}"


def test_wrapped_app_routes_are_routed(client):
    response = client.post("/wrapped/add")
    assert (response.status_code, response.text) == (200, "POST /wrapped/add")
    # its route is known: another method is the gateway's own 405
    refused = client.get("/wrapped/add")
    assert (refused.status_code, refused.json()["detail"]) == (405, "Method not allowed")


def test_head_reaches_the_service_wherever_get_is_published(client):
    plain = client.head("/api/plain")
    assert (plain.status_code, route_headers(plain)[0]) == (200, "/api/plain")
    # FastAPI's APIRoute serves no HEAD: the service itself answers 405
    item = client.head("/api/item")
    assert (item.status_code, route_headers(item)[0]) == (405, "/api/item")
    assert item.headers["allow"] == "GET"


def test_users_post_health_is_routed(client):
    response = client.post("/health")
    assert response.json() == {"service": "mounts", "posted": True}


@pytest.mark.parametrize("method", ["PROPFIND", "MKCOL"])
def test_extension_methods_reach_the_service(client, method):
    response = client.request(method, "/dav/notes")
    assert (response.status_code, response.text) == (200, f"{method} notes")
    assert route_headers(response)[0] == "/dav/{item}"


def test_unpublished_extension_method_is_the_gateways_405(client):
    response = client.request("LOCK", "/dav/notes")
    assert response.status_code == 405
    assert response.json()["detail"] == "Method not allowed"
    assert response.headers["allow"] == "OPTIONS, MKCOL, PROPFIND"

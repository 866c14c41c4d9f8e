"""Overlaps between real services: what each method does, with and without
discovery_overlap deny.

overlap_service.py runs as "owner" (GET /users/{user_id:int}), configured
first, and as "literal" (POST /users/7).  The gateway tries the literal
first; a GET goes on to the owner's route, but a CORS preflight (OPTIONS,
which neither publishes) goes to the first route the path matches.  With
allow the literal's service answers the preflights of /users/7, the owner's
GET included, and the overlap is listed; with deny the literal's route is
rejected and everything on /users/7 is the owner's.
"""

from pathlib import Path

import httpx
import pytest

from support import (GATEWAY_SERVER, NGINX_PREAMBLE, START_TIMEOUT, Gateway,
                     Service, json_body, route_headers)

SCRIPT = Path(__file__).resolve().parent / "overlap_service.py"
ROLES = ("owner", "literal")
OWNER_ROUTE = "/users/{user_id:int}"

OVERLAP_CONF = NGINX_PREAMBLE + """\
    discovery_zone     1m;
    discovery_overlap  {overlap};
    discovery_service  owner    http://127.0.0.1:{owner} interval=1s timeout=2s;
    discovery_service  literal  http://127.0.0.1:{literal} interval=1s timeout=2s;
""" + GATEWAY_SERVER


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    directory = tmp_path_factory.mktemp("overlap-services")
    running = [Service(role, directory, script=SCRIPT, args=["--role", role]) for role in ROLES]
    try:
        for service in running:
            service.start()
        yield running
    finally:
        for service in running:
            service.stop()


def start_gateway(directory, services, overlap):
    nginx = Gateway(directory, services, template=OVERLAP_CONF, overlap=overlap)
    nginx.start()
    try:
        nginx.wait_for_states(dict.fromkeys(ROLES, "healthy"), timeout=START_TIMEOUT)
    except AssertionError as error:
        nginx.stop()
        raise AssertionError(f"{error}\nnginx error.log:\n{nginx.error_log_tail()}") from None
    return nginx


@pytest.fixture(scope="module", params=["allow", "deny"])
def gateway(request, services, tmp_path_factory):
    nginx = start_gateway(tmp_path_factory.mktemp(f"overlap-{request.param}"), services,
                          request.param)
    try:
        yield request.param, nginx
    finally:
        nginx.stop()


def preflight(url, origin, method):
    return httpx.options(url, headers={"Origin": origin,
                                       "Access-Control-Request-Method": method})


def test_services_answer_their_own_preflights_directly(services):
    owner, literal = services
    allowed = preflight(owner.url + "/users/7", "https://owner.example", "GET")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://owner.example"
    refused = preflight(literal.url + "/users/7", "https://owner.example", "GET")
    assert (refused.status_code, refused.text) == (400, "Disallowed CORS origin, method")


def test_the_status_page_lists_or_rejects(gateway):
    overlap, nginx = gateway
    status = nginx.status()
    literal = next(s for s in status["services"] if s["name"] == "literal")
    if overlap == "allow":
        assert literal["rejected"] == []
        assert status["overlaps"] == [{
            "service": "literal", "route": "/users/7", "methods": ["OPTIONS"],
            "shadows": {"service": "owner", "route": OWNER_ROUTE}}]
        assert ('route overlap: OPTIONS /users/7 of "literal" shadows '
                f'{OWNER_ROUTE} of "owner"') in nginx.error_log.read_text()
    else:
        assert literal["rejected"] == [{"path": "/users/7", "methods": ["POST"],
                                        "reason": f"shadows owner {OWNER_ROUTE}"}]
        assert status["overlaps"] == []


def test_get_goes_on_to_the_owner(gateway):
    _, nginx = gateway
    response = httpx.get(nginx.url + "/users/7")
    assert response.status_code == 200
    assert response.json() == {"service": "owner", "user_id": 7}
    assert route_headers(response)[0] == OWNER_ROUTE


def test_post_is_the_literals_unless_denied(gateway):
    overlap, nginx = gateway
    response = httpx.post(nginx.url + "/users/7")
    if overlap == "allow":
        assert response.status_code == 200
        assert response.json() == {"service": "literal"}
        assert route_headers(response)[0] == "/users/7"
    else:
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD, OPTIONS"
        assert json_body(response)["service"] == "owner"


def test_the_preflight_of_the_owners_get(gateway):
    overlap, nginx = gateway
    response = preflight(nginx.url + "/users/7", "https://owner.example", "GET")
    if overlap == "allow":
        # the literal's service answers it, with its own CORS policy
        assert route_headers(response)[0] == "/users/7"
        assert (response.status_code, response.text) == (400, "Disallowed CORS origin, method")
    else:
        assert route_headers(response)[0] == OWNER_ROUTE
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://owner.example"
        assert "GET" in response.headers["access-control-allow-methods"]


def test_a_path_the_literal_does_not_have_is_the_owners(gateway):
    _, nginx = gateway
    response = preflight(nginx.url + "/users/8", "https://owner.example", "GET")
    assert route_headers(response)[0] == OWNER_ROUTE
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://owner.example"

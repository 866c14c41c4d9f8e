"""A {x:path} parameter in the middle of a template, behind the gateway.

files_service.py publishes "/files/{p:path}/meta" and
"/files/{p:path}/rev/{n:int}" through the helper.  The gateway routes them
(no longer skipped as "{:path} is not the last segment"), and for each path
the service answers through the gateway exactly what it answers directly:
the same route, the same parameters (Starlette's greedy split).  A path no
route matches is the gateway's own 404.
"""

from pathlib import Path

import httpx
import pytest

from support import json_body, one_service_gateway, raw_request, route_headers

FILES = Path(__file__).resolve().parent / "files_service.py"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(gateway, service), both running, the service healthy at the gateway."""
    with one_service_gateway(tmp_path_factory.mktemp("files"), "files", FILES) as both:
        yield both


def test_routes_are_published_and_kept(files):
    gateway, _ = files
    [service] = gateway.status()["services"]
    paths = [route["path"] for route in service["routes"]]
    assert "/files/{p:path}/meta" in paths
    assert "/files/{p:path}/rev/{n:int}" in paths
    assert (service["rejected"], service["rejected_routes"]) == ([], 0)
    assert "not the last segment" not in gateway.error_log.read_text()


@pytest.mark.parametrize("target, route, params", [
    ("/files/a/b/c/meta", "/files/{p:path}/meta", {"p": "a/b/c"}),
    ("/files/x/meta", "/files/{name}/meta", {"name": "x"}),
    # greedy: the parameter takes all but the last segment
    ("/files/meta/x/meta/meta", "/files/{p:path}/meta", {"p": "meta/x/meta"}),
    ("/files/a/b/rev/3", "/files/{p:path}/rev/{n:int}", {"p": "a/b", "n": 3}),
    ("/files/a/rev/3/meta", "/files/{p:path}/meta", {"p": "a/rev/3"}),
    # %2F is a separator on both sides
    ("/files/a%2Fb/meta", "/files/{p:path}/meta", {"p": "a/b"}),
])
def test_the_service_runs_what_it_runs_without_the_gateway(files, target, route, params):
    gateway, service = files
    direct = raw_request(service.port, target)
    routed = raw_request(gateway.port, target)

    assert (direct.status_code, direct.json()) == (200, {"route": route, "params": params})
    assert (routed.status_code, routed.json()) == (200, direct.json())
    assert route_headers(routed)[0] == route


@pytest.mark.parametrize("target", ["/files/a/b", "/files/meta", "/files/a/rev/x"])
def test_a_path_no_template_matches_is_the_gateways_404(files, target):
    gateway, service = files
    assert httpx.get(service.url + target).status_code == 404

    response = httpx.get(gateway.url + target)
    assert response.status_code == 404
    assert json_body(response) == {"detail": "Endpoint not available", "path": target}
    assert route_headers(response)[0] in (None, "")

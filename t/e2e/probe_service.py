"""Probe service: answers every request with the route Starlette ran it as.

    /usr/bin/python3 t/e2e/probe_service.py --port 8010

Every route answers 200 with JSON: "route" (the template FastAPI matched,
request.scope["route"].path), "path" and "raw_path" (as uvicorn put them in
the scope), "query_string", and "gateway_route" and "gateway_uri" (the
X-Discovery-Route and X-Gateway-Uri headers the gateway sent, when it does).  A path no route takes answers 404 with "route": null and
the same members.  The routes are the targets of path confusion: a catch-all
that a dot segment climbs out of, an authenticated catch-all a dot segment
climbs into, one-segment parameters that an encoded slash splits.
"""

import argparse
import sys
from pathlib import Path

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

try:
    from nginx_discovery import auth_dependency, create_service_health_endpoint
except ImportError:  # run from a checkout without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
    from nginx_discovery import auth_dependency, create_service_health_endpoint

SERVICE = "probe"
ROUTES = (
    # the survey's paths (/a/..., /b): which of these took the request
    # tells how many segments the service saw, and which
    "/b",
    "/a/b",
    "/a/{segment}",
    "/a/{rest:path}",
    # the attacks' targets
    "/static/{rest:path}",
    "/users/{user_id:int}/avatar",
    "/users/{name}",
    "/files/{name}",
)
AUTH_ROUTES = ("/admin/{rest:path}",)

app = FastAPI(title=SERVICE)


@auth_dependency
def authenticated():
    """Checks nothing: the probe reports what ran, it does not refuse; the
    mark only makes the helper publish "auth_required": true."""


def answer(request: Request, status_code=200):
    route = request.scope.get("route")
    return JSONResponse({
        "route": route.path if route is not None else None,
        "path": request.scope["path"],
        "raw_path": request.scope["raw_path"].decode("latin-1"),
        "query_string": request.scope["query_string"].decode("latin-1"),
        "gateway_route": request.headers.get("x-discovery-route"),
        "gateway_uri": request.headers.get("x-gateway-uri"),
    }, status_code=status_code)


async def echo(request: Request):
    """Report the route this request ran as."""
    return answer(request)


@app.exception_handler(HTTPException)
async def not_routed(request: Request, exc: HTTPException):
    return answer(request, exc.status_code)


for template in ROUTES:
    app.add_api_route(template, echo, methods=["GET"])
for template in AUTH_ROUTES:
    app.add_api_route(template, echo, methods=["GET"], dependencies=[Depends(authenticated)])

create_service_health_endpoint(app, SERVICE, "1.0")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8010)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="info")

"""Mounts service: routes whose methods the helper learns from the app.

    /usr/bin/python3 t/e2e/mounts_service.py --port 8011

An APIRoute (no HEAD), a Starlette Route (HEAD with GET), a WSGI
application (any method), a Starlette app wrapped in middleware (its own
routes), and a user's POST /health beside the helper's GET, and WebDAV methods.  Every answer
names the method it served.
"""

import argparse
import sys
import warnings
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

try:
    from nginx_discovery import create_service_health_endpoint
except ImportError:  # run from a checkout without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
    from nginx_discovery import create_service_health_endpoint

try:
    from a2wsgi import WSGIMiddleware
except ImportError:
    with warnings.catch_warnings():
        # Starlette's own bridge is deprecated in favour of a2wsgi
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.middleware.wsgi import WSGIMiddleware

SERVICE = "mounts"
app = FastAPI(title=SERVICE)


def served(request):
    return PlainTextResponse(f"{request.method} {request.url.path}")


def legacy(environ, start_response):
    """A WSGI application: answers every method."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{environ['REQUEST_METHOD']} legacy".encode()]


@app.get("/api/item")
def item():
    return {"service": SERVICE}


@app.api_route("/dav/{item}", methods=["PROPFIND", "MKCOL"])
def dav(item: str, request: Request):
    return PlainTextResponse(f"{request.method} {item}")


@app.post("/health")
def post_health():
    return {"service": SERVICE, "posted": True}


app.add_route("/api/plain", served)
app.mount("/legacy", WSGIMiddleware(legacy))
app.mount("/wrapped", GZipMiddleware(Starlette(routes=[Route("/add", served, methods=["POST"])])))

create_service_health_endpoint(app, SERVICE, "1.0")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8011)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="info")

"""Overlap services: a route of one beside a more specific route of another.

    /usr/bin/python3 t/e2e/overlap_service.py --role owner --port 8014
    /usr/bin/python3 t/e2e/overlap_service.py --role literal --port 8015

"owner" serves GET /users/{user_id:int}; "literal" serves POST /users/7, a
literal the gateway tries before the owner's int.  Neither publishes
OPTIONS: each answers CORS preflights with Starlette's CORSMiddleware, for
its own origin (https://ROLE.example) and methods only, so which service
answered a preflight shows in its answer.  Every route answers with the
role that ran it.
"""

import argparse
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

try:
    from nginx_discovery import create_service_health_endpoint
except ImportError:  # run from a checkout without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
    from nginx_discovery import create_service_health_endpoint

METHODS = {"owner": ["GET"], "literal": ["POST"]}


def make_app(role):
    app = FastAPI(title=role)
    app.add_middleware(CORSMiddleware, allow_origins=[f"https://{role}.example"],
                       allow_methods=METHODS[role])

    if role == "owner":
        @app.get("/users/{user_id:int}")
        def user(user_id: int):
            return {"service": role, "user_id": user_id}
    else:
        @app.post("/users/7")
        def update_seven():
            return {"service": role}

    create_service_health_endpoint(app, role, "1.0")
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=sorted(METHODS), required=True)
    parser.add_argument("--port", type=int, default=8014)
    options = parser.parse_args()
    uvicorn.run(make_app(options.role), host="127.0.0.1", port=options.port,
                log_level="info")

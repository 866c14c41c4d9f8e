"""A FastAPI service that registers itself in etcd, for t/e2e/test_fleet.py
and `make fleet`: GET /NAME/{item} answers its name and port; GET /_polls
the times (unix) the gateways polled it, for share=on."""

import argparse
import time

import uvicorn
from fastapi import FastAPI

from nginx_discovery import create_service_health_endpoint

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--name", required=True)
parser.add_argument("--registry", required=True, help="member URLs, comma-separated")
parser.add_argument("--ttl", type=int, default=10)
parser.add_argument("--prefix", default="/nginx-discovery/")
args = parser.parse_args()

app = FastAPI()
polls = []


@app.middleware("http")
async def count_polls(request, call_next):
    # the gateways' polls; the registration's own check asks no routes
    if request.url.path == "/health" and "include_routes" in request.url.query:
        polls.append(time.time())
    return await call_next(request)


@app.get("/_polls")
def get_polls():
    return polls


@app.get("/%s/{item}" % args.name)
def get_item(item: str):
    return {"service": args.name, "port": args.port, "item": item}


create_service_health_endpoint(
    app, args.name, "1.0",
    registry=args.registry.split(","),
    advertise="http://127.0.0.1:%d" % args.port,
    ttl=args.ttl,
    registry_prefix=args.prefix,
    registry_options={"interval": "1s", "timeout": "1s"},
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")

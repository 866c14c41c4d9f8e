"""A FastAPI service for the TLS and DNS tests, over http or https.

    /usr/bin/python3 t/e2e/tls_service.py --name secure --port 8443 --host localhost \\
        --ssl-certfile server.pem --ssl-keyfile server.key \\
        [--ssl-cert-reqs 2 --ssl-ca-certs ca.pem] [--basic-auth USER:PASSWORD]

It listens on every address each --host resolves to (getaddrinfo, as
asyncio's create_server does for a name), all on --port: a service addressed
as http://localhost:PORT answers on 127.0.0.1 and, where localhost has it,
::1.  The --ssl-* options are uvicorn's own (its command line's names),
passed to uvicorn.Config unchanged: --ssl-cert-reqs 2 (ssl.CERT_REQUIRED)
with --ssl-ca-certs makes a client certificate signed by that CA mandatory.

GET /NAME/echo answers JSON: "service", "host" (the Host header), "scheme"
(https under TLS), "server" (the local address and port the request came in
on), "authorization" (whether one was sent).  GET /health is the helper's;
with --basic-auth, a /health request without exactly those credentials
(HTTP basic) answers 401, so a gateway that does not authenticate its polls
never sees the service healthy.
"""

import argparse
import base64
import socket
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

try:
    from nginx_discovery import create_service_health_endpoint
except ImportError:  # run from a checkout without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
    from nginx_discovery import create_service_health_endpoint


def make_app(name, basic_auth):
    app = FastAPI(title=name)
    expected = None
    if basic_auth is not None:
        expected = "Basic " + base64.b64encode(basic_auth.encode()).decode()

    @app.middleware("http")
    async def require_basic_auth(request: Request, call_next):
        if (expected is not None and request.url.path == "/health"
                and request.headers.get("authorization") != expected):
            return JSONResponse({"service": name, "detail": "Not authenticated"}, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="discovery"'})
        return await call_next(request)

    @app.get(f"/{name}/echo")
    async def echo(request: Request):
        """Say how the request arrived."""
        return {
            "service": name,
            "host": request.headers.get("host"),
            "scheme": request.url.scheme,
            "server": list(request.scope["server"]),
            "authorization": "authorization" in request.headers,
        }

    create_service_health_endpoint(app, name, "1.0")
    return app


def listening_sockets(hosts, port):
    """A listening socket on port for every address of every host."""
    sockets = []
    for host in hosts:
        for family, kind, proto, _, address in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
            sockets.append(sock)
    return sockets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", action="append", required=True)
    parser.add_argument("--ssl-certfile")
    parser.add_argument("--ssl-keyfile")
    parser.add_argument("--ssl-cert-reqs", type=int, default=0)
    parser.add_argument("--ssl-ca-certs")
    parser.add_argument("--basic-auth", metavar="USER:PASSWORD")
    args = parser.parse_args()

    sockets = listening_sockets(args.host, args.port)
    print("listening on", " ".join(str(s.getsockname()[:2]) for s in sockets), flush=True)
    config = uvicorn.Config(
        make_app(args.name, args.basic_auth), log_level="info",
        ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile,
        ssl_cert_reqs=args.ssl_cert_reqs, ssl_ca_certs=args.ssl_ca_certs)
    uvicorn.Server(config).run(sockets=sockets)


if __name__ == "__main__":
    main()

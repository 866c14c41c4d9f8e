#!/usr/bin/python3
"""soak/mock_service.py: the route-publishing services of the soak test.

    mock_service.py PORT NAME MODE [OFFSET]

Serves GET /health?include_routes=true on 127.0.0.1:PORT (any other path
answers 200 "svc NAME METHOD PATH", though the soak proxies to a separate
backend).  What the route document holds depends on MODE and on the time
since the process started (plus OFFSET seconds, to put two services out of
phase):

  stable   always healthy, always the same routes (NAME_ROUTES of them under
           /NAME/r<k>/..., plus a few fixed shapes); the "must be 200" set.
  churn    always healthy; a core set that is always published
           (/churn/core/...) plus rotating families /churn/f<k>/{id:int}:
           5 of 10 families at a time, the window moving every CHURN_STEP
           (3) seconds, and a route /churn/gen<epoch> new each step.
  flap     a 20 s cycle: 0-8 s healthy, 8-10 s HTTP 500, 10-11 s a
           malformed document, 11-14 s the poll hangs for HANG_SECONDS (3,
           past the 1 s poll timeout), 14-15 s {"status": "unhealthy"},
           15-20 s healthy.  Routes /NAME/x/{id:int} (GET) and /NAME/y
           (GET, POST).

Runs until killed; hanging answers are bounded (HANG_SECONDS), so threads
do not pile up.
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHURN_STEP = 3
CHURN_FAMILIES = 10
CHURN_WINDOW = 5
HANG_SECONDS = 3.0
FLAP_CYCLE = 20
STABLE_ROUTES = 200


def route(path, methods=("GET",), **extra):
    r = {"path": path, "methods": list(methods)}
    r.update(extra)
    return r


def stable_doc(name):
    routes = [route("/%s/r%d/items/{item_id:int}" % (name, k))
              for k in range(STABLE_ROUTES)]
    routes += [
        route("/%s/items" % name, ("GET", "POST")),
        route("/%s/items/{item_id:int}" % name, ("GET", "PUT", "DELETE")),
        route("/%s/users/{user_id}/orders/{order_id:uuid}" % name),
        route("/%s/files/{rest:path}" % name),
        route("/%s/info" % name, auth_required=True),
    ]
    return {"status": "healthy", "service": name, "version": "1.0",
            "routes": routes}


def churn_doc(name, elapsed):
    epoch = int(elapsed // CHURN_STEP)
    routes = [
        route("/churn/core/{id:int}"),
        route("/churn/core/info", ("GET", "POST")),
    ]
    for i in range(CHURN_WINDOW):
        k = (epoch + i) % CHURN_FAMILIES
        routes.append(route("/churn/f%d/{id:int}" % k))
    routes.append(route("/churn/gen%d" % epoch))
    return {"status": "healthy", "service": name,
            "version": "epoch-%d" % epoch, "routes": routes}


def flap_doc(name):
    return {"status": "healthy", "service": name, "version": "1.0",
            "routes": [route("/%s/x/{id:int}" % name),
                       route("/%s/y" % name, ("GET", "POST"))]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):  # quiet
        pass

    def answer(self, status, body):
        data = body.encode() if isinstance(body, str) else body
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the poller gave up (timeout) or nginx reloaded

    def do_GET(self):
        srv = self.server
        if not self.path.startswith("/health"):
            self.answer(200, "svc %s GET %s\n" % (srv.name, self.path))
            return
        srv.polls += 1
        elapsed = time.monotonic() - srv.t0 + srv.offset
        if srv.mode == "stable":
            self.answer(200, json.dumps(stable_doc(srv.name)))
        elif srv.mode == "churn":
            self.answer(200, json.dumps(churn_doc(srv.name, elapsed)))
        else:
            phase = elapsed % FLAP_CYCLE
            if phase < 8 or phase >= 15:
                self.answer(200, json.dumps(flap_doc(srv.name)))
            elif phase < 10:
                self.answer(500, '{"detail": "flapping"}')
            elif phase < 11:
                self.answer(200, '{"routes": [{"path": "/broken"')
            elif phase < 14:
                time.sleep(HANG_SECONDS)
                self.answer(200, json.dumps(flap_doc(srv.name)))
            else:
                self.answer(200, '{"status": "unhealthy", "routes": []}')

    def do_POST(self):
        self.answer(200, "svc %s POST %s\n" % (self.server.name, self.path))


def main():
    port, name, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    offset = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    if mode not in ("stable", "churn", "flap"):
        sys.exit("unknown mode %r" % mode)
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.name, srv.mode, srv.offset = name, mode, offset
    srv.t0, srv.polls = time.monotonic(), 0
    srv.serve_forever()


if __name__ == "__main__":
    main()

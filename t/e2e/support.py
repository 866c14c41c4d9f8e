"""Processes and helpers of the end-to-end tests: the example services,
nginx with the built module, polling with a deadline."""

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "t" / "lib"))

# one copy of these for the Python tests and tools: t/lib/discovery_test.py
from discovery_test import free_port, module_version, temp_paths, wait_until  # noqa: E402,F401

MODULE = ROOT / "build" / "ngx_http_discovery_module.so"
NGINX = "/usr/sbin/nginx"
PYTHON = "/usr/bin/python3"
SERVICES = ("chat", "users", "billing")
ALL_HEALTHY = dict.fromkeys(SERVICES, "healthy")

START_TIMEOUT = 15.0  # seconds for a process to answer
STOP_TIMEOUT = 5.0  # seconds between terminate and kill

# How every test's configuration starts: the module, nginx in a prefix of its
# own, and the http block opened; a template adds the rest of that block.
# Gateway fills in module, workers and log_level (1 and info by default).
NGINX_PREAMBLE = """\
load_module {module};

user              root;
worker_processes  {workers};
master_process    on;
error_log         logs/error.log {log_level};
pid               logs/nginx.pid;

events {{
    worker_connections  1024;
}}

http {{
    access_log  logs/access.log;

""" + temp_paths("temp") + "\n"

# The example services behind nginx, as nginx.conf.example has them.
NGINX_CONF = NGINX_PREAMBLE + """\
    discovery_zone  16m;

    discovery_service  chat     http://127.0.0.1:{chat} interval=1s timeout=2s fails=1;
    discovery_service  users    http://127.0.0.1:{users} interval=1s timeout=2s fails=1;
    discovery_service  billing  http://127.0.0.1:{billing} uri=/openapi.json interval=1s timeout=2s fails=1;

    upstream users {{
        server     127.0.0.1:{users};
        keepalive  16;
    }}

    map $http_upgrade $connection_upgrade {{
        default    upgrade;
        ''         '';
    }}

    server {{
        listen  127.0.0.1:{gateway};

        location / {{
            discovery_route  on;

            proxy_pass          http://$discovery_upstream;
            proxy_http_version  1.1;
            proxy_set_header    Host $host;
            proxy_set_header    Upgrade $http_upgrade;
            proxy_set_header    Connection $connection_upgrade;
            proxy_set_header    X-Discovery-Route $discovery_route;
            proxy_set_header    X-Auth-Required $discovery_route_auth;

            add_header  X-Discovery-Route $discovery_route always;
            add_header  X-Discovery-Auth $discovery_route_auth always;
        }}

        location = /_discovery {{
            allow  127.0.0.1;
            deny   all;
            discovery_status;
        }}
    }}
}}
"""


def tail(path, lines=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"({error})"


def stop_process(proc):
    """Terminate proc, wait for it, kill it if it does not exit in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Service:
    """One service as a subprocess: examples/NAME_service.py unless script is
    given, with args after its --port."""

    def __init__(self, name, directory, script=None, args=()):
        self.name = name
        self.script = script or ROOT / "examples" / f"{name}_service.py"
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / f"{name}.log"
        self.proc = None

    def start(self):
        """Start the service (on the same port as before) and wait until it answers."""
        self.launch()
        self.wait_ready()

    def launch(self):
        env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), PYTHONUNBUFFERED="1")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [PYTHON, str(self.script), "--port", str(self.port), *self.args],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self):
        wait_until(self._answers, timeout=START_TIMEOUT, message=f"{self.name} on {self.url}")

    def _answers(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log)}")
        try:
            return httpx.get(self.url + "/openapi.json", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self):
        stop_process(self.proc)

    def log_text(self):
        return self.log.read_text(errors="replace")

    def wait_for_log(self, needle, timeout=5.0):
        """Wait until the service's log (uvicorn's access log included) holds needle."""
        wait_until(self.log_text, lambda text: needle in text, timeout,
                   message=f"{needle!r} in {self.log}")


class Gateway:
    """nginx in the foreground (master and workers) in its own prefix directory."""

    def __init__(self, directory, services, template=NGINX_CONF, **settings):
        """template: the configuration, formatted with module, gateway (the port
        of self.url), each service's name as its port, and settings."""
        self.dir = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.error_log = directory / "logs" / "error.log"
        self.proc = None
        (directory / "logs").mkdir()
        (directory / "temp").mkdir()
        # nginx loads a private copy: a rebuild that rewrites build/*.so in
        # place while nginx runs would crash its workers (SIGSEGV)
        module = shutil.copy(MODULE, directory / MODULE.name)
        self.conf = directory / "nginx.conf"
        settings = {"workers": 1, "log_level": "info", **settings}
        self.conf.write_text(template.format(
            module=module, gateway=self.port, **settings, **{s.name: s.port for s in services}))

    def start(self):
        self.proc = subprocess.Popen(
            [NGINX, "-p", f"{self.dir}/", "-c", str(self.conf), "-e", str(self.error_log),
             "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop(self):
        stop_process(self.proc)

    def start_healthy(self, states=None):
        """Start nginx and wait until the status page shows `states` (every
        example service healthy by default); the error log's tail if not."""
        self.start()
        try:
            self.wait_for_states(ALL_HEALTHY if states is None else states,
                                 timeout=START_TIMEOUT)
        except AssertionError as error:
            raise AssertionError(f"{error}\nnginx error.log:\n{self.error_log_tail()}") from None

    def status(self):
        """The discovery_status page, parsed; {} while nginx does not answer yet."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.error_log_tail()}")
        try:
            response = httpx.get(self.url + "/_discovery", timeout=2)
        except httpx.TransportError:
            return {}
        return response.json()

    def states(self):
        """{service name: state} from the status page."""
        return {s["name"]: s["state"] for s in self.status().get("services", [])}

    def wait_for_states(self, expected, timeout=10.0):
        """Wait until the status page shows the services in the expected states."""
        wait_until(self.states, lambda states: states == expected, timeout,
                   message=f"{expected} on the status page")

    def error_log_tail(self, lines=40):
        return tail(self.error_log, lines)


class RawResponse:
    """An answer to raw_request(): status, headers (case-insensitive), body bytes."""

    def __init__(self, status, headers, body):
        self.status_code = status
        self.headers = headers
        self.content = body

    def json(self):
        return json.loads(self.content)


def raw_request(port, target, method="GET", host="127.0.0.1", timeout=5.0):
    """Send one request with target exactly as given and return the answer.

    target (str, sent as latin-1, or bytes) goes on the request line
    untouched: httpx removes dot segments, re-encodes %zz and backslashes,
    upper-cases percent escapes and drops fragments, so it cannot send the
    paths these tests are about.
    """
    if isinstance(target, str):
        target = target.encode("latin-1")
    request = (method.encode() + b" " + target + b" HTTP/1.1\r\n"
               + b"Host: " + host.encode() + b"\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        body = response.read()
        return RawResponse(response.status, response.headers, body)


def json_body(response):
    """The response's JSON body, after checking its content type."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    return json.loads(response.content)


def route_headers(response):
    """(X-Discovery-Route, X-Discovery-Auth) as the gateway added them, None when absent."""
    return response.headers.get("x-discovery-route"), response.headers.get("x-discovery-auth")


def wait_for_status(client, path, status, timeout=10.0):
    """GET path until it answers status; return that response."""
    return wait_until(lambda: client.get(path), lambda response: response.status_code == status,
                      timeout, message=f"GET {path} answering {status}")


# The gateway's server, closing the http block: every path routed, with
# the route in a header, and the status page.
GATEWAY_SERVER = """    server {{
        listen  127.0.0.1:{gateway};

        location / {{
            discovery_route  on;
            proxy_pass       http://$discovery_upstream;
            add_header       X-Discovery-Route $discovery_route always;
        }}

        location = /_discovery {{
            discovery_status;
        }}
    }}
}}
"""

# One service behind one routing location and the status page: the gateway
# of a test about what a single app publishes and serves.  SERVICE is the
# service's name.
ONE_SERVICE_CONF = NGINX_PREAMBLE + """\
    discovery_zone     1m;
    discovery_service  SERVICE  http://127.0.0.1:{SERVICE} interval=1s timeout=2s;
""" + GATEWAY_SERVER


@contextlib.contextmanager
def one_service_gateway(directory, name, script):
    """(gateway, service), both running, the service healthy at the gateway;
    both stopped on exit."""
    service = Service(name, directory, script=script)
    nginx = Gateway(directory, [service],
                    template=ONE_SERVICE_CONF.replace("SERVICE", name))
    try:
        service.start()
        nginx.start()
        try:
            nginx.wait_for_states({name: "healthy"}, timeout=START_TIMEOUT)
        except AssertionError as error:
            raise AssertionError(f"{error}\nnginx error.log:\n{nginx.error_log_tail()}") from None
        yield nginx, service
    finally:
        nginx.stop()
        service.stop()

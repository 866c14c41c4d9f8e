"""gRPC through the gateway: real gRPC servers (examples/grpc_service.py,
python3-grpcio, with reflection and health) discovered with format=grpc,
and a real gRPC client through nginx's grpc_pass, chosen by
$discovery_protocol in the block the README recommends.

The gateway listens three ways: cleartext HTTP/2 (nginx 1.22 speaks only
HTTP/2 there, so clients need prior knowledge), TLS with ALPN (REST over
HTTP/1.1 and gRPC over HTTP/2 on one port), and plain HTTP/1.1 for the
status page.  Raw answers are read with curl, which shows the HTTP status
and headers a gRPC client would turn into a code of its own.
"""

import socket
import subprocess
import sys
import time

import grpc
import httpx
import pytest

from support import (NGINX_PREAMBLE, PYTHON, ROOT, START_TIMEOUT, Gateway, Service, free_port,
                     stop_process, tail, wait_until)

sys.path.insert(0, str(ROOT / "examples"))
from grpc_stubs import Stubs  # noqa: E402

INTERVAL = 1.0  # seconds: interval=1s below

LOCATION = """\
        location / {{
            discovery_route  on;

            if ($discovery_protocol = grpc) {{
                grpc_pass  $discovery_scheme://$discovery_upstream;
            }}

            proxy_pass  $discovery_scheme://$discovery_upstream;
        }}
"""

GRPC_CONF = NGINX_PREAMBLE + """\
    discovery_zone  4m;

    discovery_service  shop     grpc://127.0.0.1:{shop} format=grpc interval=1s timeout=2s;
    discovery_service  billing  grpc://127.0.0.1:{billing} format=grpc interval=1s timeout=2s;
    discovery_service  sick     grpc://127.0.0.1:{sick} interval=1s timeout=2s;
    discovery_service  chat     http://127.0.0.1:{chat} interval=1s timeout=2s;
    discovery_service  vault    grpcs://localhost:{vault} interval=1s timeout=2s;

    discovery_ssl_trusted_certificate  {cert};

    server {{
        listen  127.0.0.1:{h2} http2;
        listen  127.0.0.1:{tls} ssl http2;

        ssl_certificate      {cert};
        ssl_certificate_key  {key};

""" + LOCATION + """\
    }}

    server {{
        listen  127.0.0.1:{gateway};

        location = /_discovery {{
            discovery_status;
        }}
    }}
}}
"""

# one gRPC service behind its own gateway, for the tests that stop it
ONE_CONF = NGINX_PREAMBLE + """\
    discovery_zone  1m;

    discovery_service  ledger  grpc://127.0.0.1:{ledger} format=grpc interval=1s timeout=2s;

    server {{
        listen  127.0.0.1:{h2} http2;
""" + LOCATION + """\
    }}

    server {{
        listen  127.0.0.1:{gateway};

        location = /_discovery {{
            discovery_status;
        }}
    }}
}}
"""


class GrpcService:
    """examples/grpc_service.py as a subprocess, on a port of its own."""

    def __init__(self, name, directory, *args):
        self.name = name
        self.args = list(args)
        self.port = free_port()
        self.log = directory / f"{name}.log"
        self.proc = None

    def start(self, *extra):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [PYTHON, str(ROOT / "examples" / "grpc_service.py"), "--port", str(self.port),
                 "--name", self.name, *self.args, *extra],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._listening, timeout=START_TIMEOUT, message=f"{self.name} listening")

    def _listening(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log)}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self):
        stop_process(self.proc)


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 and localhost."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", "key.pem", "-out", "cert.pem", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        cwd=directory, check=True, capture_output=True)
    return directory / "cert.pem", directory / "key.pem"


@pytest.fixture(scope="module")
def stubs():
    return Stubs()


@pytest.fixture(scope="module")
def grpc_gateway(tmp_path_factory):
    """shop and billing (gRPC), sick (gRPC, NOT_SERVING) and chat (REST)
    behind one gateway, once every service has been polled."""
    directory = tmp_path_factory.mktemp("grpc")
    shop = GrpcService("shop", directory, "--service", "shop.Catalog")
    billing = GrpcService("billing", directory, "--service", "billing.Ledger",
                          "--reflection", "v1alpha", "--health", "none")
    sick = GrpcService("sick", directory, "--service", "shop.Catalog", "--health", "not-serving")
    chat = Service("chat", directory)
    cert, key = make_cert(directory)
    vault = GrpcService("vault", directory, "--service", "vault.Safe",
                        "--tls", str(cert), str(key))
    nginx = None
    try:
        for service in (shop, billing, sick, vault):
            service.start()
        chat.start()
        nginx = Gateway(directory, [shop, billing, sick, chat, vault], template=GRPC_CONF,
                        h2=free_port(), tls=free_port(), cert=cert, key=key)
        nginx.start()
        nginx.wait_for_states({"shop": "healthy", "billing": "healthy", "sick": "unhealthy",
                               "chat": "healthy", "vault": "healthy"}, timeout=START_TIMEOUT)
        nginx.cert = cert
        yield nginx
    finally:
        if nginx:
            nginx.stop()
        for service in (shop, billing, sick, chat, vault):
            service.stop()


def settings_port(gateway, which):
    """The port of a listen line of the gateway's configuration: h2 first, tls second."""
    ports = [line.split("127.0.0.1:")[1].split()[0].rstrip(";")
             for line in gateway.conf.read_text().splitlines() if line.strip().startswith("listen")]
    return int(ports[{"h2": 0, "tls": 1}[which]])


def call(stubs, target, method, *texts, channel=None, timeout=5):
    """Calls method (/package.Service/Method) with one Note per text; the
    answers' (served_by, text) pairs."""
    service, _, name = method.lstrip("/").partition("/")
    Note = stubs.package(service).Note
    kinds = {"Get": "unary_unary", "Charge": "unary_unary", "Refund": "unary_unary",
             "Open": "unary_unary",
             "Upload": "stream_unary", "Watch": "unary_stream", "History": "unary_stream",
             "Chat": "stream_stream"}
    kind = kinds.get(name, "unary_unary")
    own = channel is None
    channel = channel or grpc.insecure_channel(target)
    try:
        stub = getattr(channel, kind)(method, request_serializer=Note.SerializeToString,
                                      response_deserializer=Note.FromString)
        notes = [Note(text=t) for t in texts]
        answer = stub(iter(notes) if kind.startswith("stream") else notes[0], timeout=timeout)
        answers = answer if kind.endswith("stream") else [answer]
        return [(n.served_by, n.text) for n in answers]
    finally:
        if own:
            channel.close()


def grpc_code(stubs, target, method, text="x"):
    with pytest.raises(grpc.RpcError) as failure:
        call(stubs, target, method, text)
    return failure.value.code()


def raw_grpc(port, path):
    """A gRPC POST with curl over HTTP/2 with prior knowledge: (HTTP status,
    {header: value}, body bytes).

    The request has no message: the gateway answers before reading a body
    and ends the stream with RST_STREAM(NO_ERROR), as RFC 9113 allows and
    gRPC servers do, and curl 7.88 loses an answer whose reset arrives with
    it while it is still sending.  gRPC clients read the answer.
    """
    result = subprocess.run(
        ["curl", "-sS", "-i", "--http2-prior-knowledge", "-H", "content-type: application/grpc",
         "-H", "te: trailers", "-X", "POST", f"http://127.0.0.1:{port}{path}", "--path-as-is"],
        capture_output=True, timeout=10, check=True)
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def test_status_page_marks_grpc_routes_with_their_streaming_kind(grpc_gateway):
    services = {s["name"]: s for s in grpc_gateway.status()["services"]}
    shop = {r["path"]: r for r in services["shop"]["routes"]}
    assert set(shop) == {"/shop.Catalog/Get", "/shop.Catalog/Upload", "/shop.Catalog/Watch",
                         "/shop.Catalog/Chat"}  # reflection and health are not routed
    assert {p: (r["protocol"], r["streaming"], r["methods"]) for p, r in shop.items()} == {
        "/shop.Catalog/Get": ("grpc", "unary", ["POST"]),
        "/shop.Catalog/Upload": ("grpc", "client", ["POST"]),
        "/shop.Catalog/Watch": ("grpc", "server", ["POST"]),
        "/shop.Catalog/Chat": ("grpc", "bidi", ["POST"]),
    }
    # billing has reflection v1alpha only and no health service
    assert {r["path"] for r in services["billing"]["routes"]} == {
        "/billing.Ledger/Charge", "/billing.Ledger/History"}
    assert all(r["protocol"] == "http" for r in services["chat"]["routes"])
    assert services["sick"]["last_error"] == "health check: NOT_SERVING"
    assert services["sick"]["routes"] == []


def test_unary_and_streaming_calls_reach_the_right_service(grpc_gateway, stubs):
    target = f"127.0.0.1:{settings_port(grpc_gateway, 'h2')}"
    assert call(stubs, target, "/shop.Catalog/Get", "a") == [("shop", "a")]
    assert call(stubs, target, "/billing.Ledger/Charge", "b") == [("billing", "b")]
    assert call(stubs, target, "/shop.Catalog/Upload", "x", "y") == [("shop", "x,y")]
    assert call(stubs, target, "/shop.Catalog/Watch", "w") == [
        ("shop", "w 0"), ("shop", "w 1"), ("shop", "w 2")]
    assert call(stubs, target, "/billing.Ledger/History", "h") == [
        ("billing", "h 0"), ("billing", "h 1"), ("billing", "h 2")]
    assert call(stubs, target, "/shop.Catalog/Chat", "1", "2", "3") == [
        ("shop", "1"), ("shop", "2"), ("shop", "3")]


def test_an_unknown_method_is_unimplemented(grpc_gateway, stubs):
    port = settings_port(grpc_gateway, "h2")
    assert grpc_code(stubs, f"127.0.0.1:{port}", "/shop.Catalog/Nope") == grpc.StatusCode.UNIMPLEMENTED
    # the gateway's own answer, not a 404 the client turned into 12
    status, headers, body = raw_grpc(port, "/shop.Catalog/Nope")
    assert (status, headers["grpc-status"], body) == (200, "12", b"")
    assert headers["grpc-message"] == "Endpoint not available: /shop.Catalog/Nope"
    assert headers["content-type"] == "application/grpc"
    # the reflection service is not routed (grpc_internal=off)
    status, headers, _ = raw_grpc(port, "/grpc.health.v1.Health/Check")
    assert (status, headers["grpc-status"]) == (200, "12")


def test_a_non_canonical_path_is_invalid_argument(grpc_gateway, stubs):
    port = settings_port(grpc_gateway, "h2")
    status, headers, body = raw_grpc(port, "/shop.Catalog//Get")
    assert (status, headers["grpc-status"], body) == (200, "3", b"")
    assert headers["grpc-message"] == "Path is not canonical: /shop.Catalog//Get"
    assert grpc_code(stubs, f"127.0.0.1:{port}", "/shop.Catalog/./Get") == \
        grpc.StatusCode.INVALID_ARGUMENT


def test_a_grpcs_service_is_polled_and_proxied_over_tls(grpc_gateway, stubs):
    vault = next(s for s in grpc_gateway.status()["services"] if s["name"] == "vault")
    assert vault["url"].startswith("grpcs://localhost:")
    assert [r["path"] for r in vault["routes"]] == ["/vault.Safe/Open"]
    # $discovery_scheme is grpcs: grpc_pass speaks TLS to it
    target = f"127.0.0.1:{settings_port(grpc_gateway, 'h2')}"
    assert call(stubs, target, "/vault.Safe/Open", "s") == [("vault", "s")]


def test_rest_and_grpc_on_one_tls_port(grpc_gateway, stubs):
    port = settings_port(grpc_gateway, "tls")
    # REST over HTTP/1.1 (ALPN), then gRPC over HTTP/2 (ALPN), on the same port
    with httpx.Client(verify=str(grpc_gateway.cert), timeout=5) as http:
        response = http.get(f"https://127.0.0.1:{port}/chat/rooms/lobby")
    assert response.status_code == 200
    assert response.http_version == "HTTP/1.1"
    assert response.json()["service"] == "chat"
    credentials = grpc.ssl_channel_credentials(root_certificates=grpc_gateway.cert.read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        assert call(stubs, None, "/shop.Catalog/Get", "tls", channel=channel) == [("shop", "tls")]
    # the cleartext port is HTTP/2 only: REST with prior knowledge works there
    h2 = settings_port(grpc_gateway, "h2")
    result = subprocess.run(["curl", "-sS", "--http2-prior-knowledge",
                             f"http://127.0.0.1:{h2}/chat/rooms/h2"],
                            capture_output=True, timeout=10, check=True)
    assert b'"room":"h2"' in result.stdout


@pytest.fixture
def ledger(tmp_path):
    """billing.Ledger alone behind a gateway of its own: (service, gateway)."""
    service = GrpcService("ledger", tmp_path, "--service", "billing.Ledger")
    nginx = None
    try:
        service.start()
        nginx = Gateway(tmp_path, [service], template=ONE_CONF, h2=free_port())
        nginx.start()
        nginx.wait_for_states({"ledger": "healthy"}, timeout=START_TIMEOUT)
        yield service, nginx
    finally:
        if nginx:
            nginx.stop()
        service.stop()


def test_a_stopped_service_is_unavailable(ledger, stubs):
    service, nginx = ledger
    port = settings_port(nginx, "h2")
    assert call(stubs, f"127.0.0.1:{port}", "/billing.Ledger/Charge", "c") == [("ledger", "c")]
    service.stop()
    nginx.wait_for_states({"ledger": "unhealthy"}, timeout=5)
    assert grpc_code(stubs, f"127.0.0.1:{port}", "/billing.Ledger/Charge") == \
        grpc.StatusCode.UNAVAILABLE
    status, headers, body = raw_grpc(port, "/billing.Ledger/Charge")
    assert (status, headers["grpc-status"], body) == (200, "14", b"")
    assert headers["grpc-message"] == "Service unavailable: ledger"


def test_a_method_added_and_restarted_is_routed_within_an_interval(ledger, stubs):
    service, nginx = ledger
    target = f"127.0.0.1:{settings_port(nginx, 'h2')}"
    assert grpc_code(stubs, target, "/billing.Ledger/Refund") == grpc.StatusCode.UNIMPLEMENTED
    service.stop()
    service.start("--add-method", "Refund")
    started = time.monotonic()

    def refund():
        try:
            return call(stubs, target, "/billing.Ledger/Refund", "r")
        except grpc.RpcError as error:
            return error.code()

    assert wait_until(refund, lambda r: isinstance(r, list), timeout=INTERVAL + 3,
                      message="Refund routed", interval=0.05) == [("ledger", "r")]
    # one interval, the poll's calls and the publication's 50 ms
    assert time.monotonic() - started < INTERVAL + 1.5


def normalized(text):
    """Lines without indentation or runs of blanks, and without empty ones."""
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def test_readme_and_example_show_the_block_tested_here():
    block = [line for line in normalized(LOCATION.replace("{{", "{").replace("}}", "}"))
             if not line.startswith("#")]
    for name in ("README.md", "nginx.conf.example"):
        text = [line for line in normalized((ROOT / name).read_text()) if not line.startswith("#")]
        assert any(text[i:i + len(block)] == block for i in range(len(text))), (
            f"{name} does not show the gRPC location of test_grpc.py")

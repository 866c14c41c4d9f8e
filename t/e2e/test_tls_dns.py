"""Any service, any framework (section 1): polls over TLS, https services
behind the same location block as http ones, host names without a resolver,
credentials in the service URL.

The fixtures make a private CA with the openssl command line (a server
certificate for localhost and 127.0.0.1, a client certificate for mutual
TLS), run t/e2e/tls_service.py under uvicorn over http and https, and start
nginx with the built module for each configuration, in the shape of
support.Gateway.  Every wait has a deadline and fails with what it saw.

The round-robin and reload tests give nginx a name with several addresses
without touching the machine's /etc/hosts: nginx runs in a mount namespace
of its own (unshare) where another file is mounted on /etc/hosts.  They are
skipped where that is not allowed (not root, no mount namespaces).
"""

import base64
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import textwrap
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from support import (NGINX_PREAMBLE, MODULE, NGINX, PYTHON, ROOT, START_TIMEOUT, Gateway, Service, free_port,
                     wait_until)

HERE = Path(__file__).resolve().parent

# The location block the README and nginx.conf.example recommend, copied
# verbatim: the tests below use it as it is, with only /path/ca.pem replaced
# by the test CA's path.  Change it there and here together.
RECOMMENDED_LOCATION = """\
location / {
    discovery_route on;
    proxy_pass $discovery_scheme://$discovery_upstream;
    proxy_set_header Host $discovery_host;
    proxy_ssl_server_name on;
    proxy_ssl_name $discovery_host;
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate /path/ca.pem;
}
"""

# The README's location block of today: no new variable, plain http.
HTTP_LOCATION = """\
location / {
    discovery_route  on;
    proxy_pass       http://$discovery_upstream;
}
"""

NGINX_CONF = NGINX_PREAMBLE + """\
    discovery_zone  1m;

{discovery}
    server {{
        listen  127.0.0.1:{gateway};

{location}
        location = /_discovery {{
            allow  127.0.0.1;
            deny   all;
            discovery_status;
        }}
    }}
}}
"""

POLL = "interval=1s timeout=2s"

# what a poll that failed in TLS must say: libcurl's reasons read
# "SSL certificate problem: ...", "OpenSSL SSL_connect: ...", "SSL: no
# alternative certificate subject name matches ..."; a bare "Empty reply
# from server" (a service that drops a handshake without a client
# certificate) does not say why
TLS_REASON = re.compile(r"\b(ssl|tls)\b|certificate", re.IGNORECASE)

USER = "alice"
PASSWORD = "pw-" + secrets.token_hex(8)
WRONG_PASSWORD = "wrong-" + secrets.token_hex(8)

# a name that exists only in the hosts file of nginx's own mount namespace
# (.test is reserved: it never resolves anywhere else)
MULTI_NAME = "multi.discovery.test"


# --- the private CA --------------------------------------------------------

class Pki:
    """Paths of the test CA and of the certificates it signed."""

    def __init__(self, directory):
        self.dir = directory
        self.ca = directory / "ca.pem"
        self.server_cert = directory / "server.pem"
        self.server_key = directory / "server.key"
        self.client_cert = directory / "client.pem"
        self.client_key = directory / "client.key"


def openssl(directory, *args):
    result = subprocess.run([shutil.which("openssl") or "/usr/bin/openssl", *args], cwd=directory,
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def make_pki(directory):
    """A CA, a server certificate for localhost and 127.0.0.1, a client certificate."""
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(directory, "req", "-x509", *new_key, "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=discovery test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    signed = (
        ("server", "/CN=localhost",
         "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "/CN=discovery gateway", "extendedKeyUsage=clientAuth\n"),
    )
    for serial, (name, subject, extensions) in enumerate(signed, start=2):
        (directory / f"{name}.ext").write_text("basicConstraints=CA:FALSE\n" + extensions)
        openssl(directory, "req", *new_key, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", subject)
        openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-set_serial", str(serial), "-days", "2",
                "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return Pki(directory)


# --- services --------------------------------------------------------------

class HostService(Service):
    """t/e2e/tls_service.py as NAME, on every address of hosts.

    url is what discovery_service gets: scheme://url_host:port, where the
    scheme is https when pki is given (its server certificate)."""

    def __init__(self, name, directory, pki=None, hosts=("localhost",), url_host="localhost",
                 require_client_cert=False, basic_auth=None):
        super().__init__(name, directory, script=HERE / "tls_service.py")
        self.pki = pki
        self.hosts = hosts
        self.require_client_cert = require_client_cert
        self.basic_auth = basic_auth
        self.scheme = "https" if pki else "http"
        self.url_host = url_host
        self.use_port(self.port)

    def use_port(self, port):
        self.port = port
        self.url = f"{self.scheme}://{self.url_host}:{port}"
        probe_host = f"[{self.hosts[0]}]" if ":" in self.hosts[0] else self.hosts[0]
        self.probe_url = f"{self.scheme}://{probe_host}:{port}/health"

    def launch(self):
        command = [PYTHON, str(self.script), "--name", self.name, "--port", str(self.port)]
        for host in self.hosts:
            command += ["--host", host]
        if self.pki:
            command += ["--ssl-certfile", str(self.pki.server_cert),
                        "--ssl-keyfile", str(self.pki.server_key)]
        if self.require_client_cert:
            command += ["--ssl-cert-reqs", "2", "--ssl-ca-certs", str(self.pki.ca)]
        if self.basic_auth:
            command += ["--basic-auth", self.basic_auth]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT,
                env=dict(os.environ, PYTHONPATH=str(ROOT / "python"), PYTHONUNBUFFERED="1"),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def _answers(self):
        """Any HTTP answer (401 included) on its first address."""
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()}")
        cert = (str(self.pki.client_cert), str(self.pki.client_key)) if self.pki else None
        try:
            httpx.get(self.probe_url, verify=False, cert=cert, timeout=1)
            return True
        except httpx.TransportError:
            return False


def wait_ready_on_a_free_port(service, attempts=3):
    """free_port() can only say a port was free: one taken before the
    service bound it (on another address of its host name, or as the
    source port of a connection) is replaced, and the service started again."""
    for attempt in range(attempts):
        try:
            service.wait_ready()
            return
        except RuntimeError as error:
            if "Address already in use" not in str(error) or attempt == attempts - 1:
                raise
        service.use_port(free_port())
        service.launch()


@contextmanager
def running(services):
    try:
        for service in services:
            service.launch()
        for service in services:
            wait_ready_on_a_free_port(service)
        yield
    finally:
        for service in services:
            service.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def services(pki, tmp_path_factory):
    """{name: HostService}, running:

    secure   https://localhost:PORT, the CA's server certificate
    mutual   https://localhost:PORT, and a client certificate of the CA required
    plain    http://localhost:PORT
    guarded  http://127.0.0.1:PORT, polls answered 401 without alice's password
    """
    if not MODULE.exists():
        pytest.fail(f"{MODULE} is missing: run `make module`")
    directory = tmp_path_factory.mktemp("tls-services")
    created = [
        HostService("secure", directory, pki),
        HostService("mutual", directory, pki, require_client_cert=True),
        HostService("plain", directory),
        HostService("guarded", directory, hosts=("127.0.0.1",), url_host="127.0.0.1",
                    basic_auth=f"{USER}:{PASSWORD}"),
    ]
    with running(created):
        yield {service.name: service for service in created}


# --- nginx -----------------------------------------------------------------

def discovery_lines(*lines):
    return "".join(f"    {line}\n" for line in lines)


def service_line(name, url):
    return f"discovery_service  {name}  {url} {POLL};"


def make_gateway(directory, discovery, location=HTTP_LOCATION, log_level="info",
                 gateway_class=Gateway, **extra):
    """A Gateway (not started) with this http-level discovery text and location block."""
    directory.mkdir(parents=True)
    return gateway_class(directory, [], template=NGINX_CONF, discovery=discovery,
                         location=textwrap.indent(location, " " * 8), log_level=log_level, **extra)


def start(gateway):
    """Start nginx and wait until its status page answers."""
    gateway.start()
    wait_until(lambda: "services" in gateway.status(), timeout=START_TIMEOUT,
               message=f"the status page of nginx on {gateway.url}")
    return gateway


@contextmanager
def serving(gateway):
    try:
        yield start(gateway)
    finally:
        gateway.stop()


@pytest.fixture
def nginx(tmp_path):
    """nginx(discovery, location=..., ...): a started Gateway, stopped after the test."""
    gateways = []

    def start_gateway(discovery, **options):
        gateway = make_gateway(tmp_path / f"nginx{len(gateways)}", discovery, **options)
        gateways.append(gateway)
        return start(gateway)

    try:
        yield start_gateway
    finally:
        for gateway in gateways:
            gateway.stop()


def settled(gateway, name, timeout=START_TIMEOUT):
    """The status page's entry of service name once its first poll is done."""

    def entry():
        return next((s for s in gateway.status().get("services", []) if s["name"] == name), None)

    try:
        return wait_until(entry, lambda s: s is not None and s["state"] != "pending", timeout,
                          message=f"a first poll of {name!r}")
    except AssertionError as error:
        raise AssertionError(f"{error}\nnginx error.log:\n{gateway.error_log_tail()}") from None


def assert_state(gateway, name, state):
    """The service's first poll made it state; returns its status entry."""
    entry = settled(gateway, name)
    assert entry["state"] == state, (
        f"{name} is {entry['state']}, last_error {entry.get('last_error')!r}\n"
        f"nginx error.log:\n{gateway.error_log_tail()}")
    return entry


def assert_tls_failure(gateway, name):
    """The service is unhealthy, its last_error gives a TLS reason, and an
    [error] line names the service with that reason."""
    entry = assert_state(gateway, name, "unhealthy")
    assert TLS_REASON.search(entry["last_error"] or ""), (
        f"last_error of {name} gives no TLS reason: {entry['last_error']!r}")
    lines = [line for line in gateway.error_log.read_text(errors="replace").splitlines()
             if "[error]" in line and f'"{name}"' in line]
    assert any(TLS_REASON.search(line.split(f'"{name}"', 1)[1]) for line in lines), (
        f"no [error] line names {name} with a TLS reason:\n" + "\n".join(lines))


def get(gateway, path, host="gateway.test"):
    return httpx.get(gateway.url + path, headers={"Host": host}, timeout=5)


def echo(gateway, name):
    """GET /NAME/echo through the gateway: the service's JSON answer."""
    response = get(gateway, f"/{name}/echo")
    assert response.status_code == 200, (
        f"/{name}/echo answered {response.status_code}: {response.text[:300]}\n"
        f"nginx error.log:\n{gateway.error_log_tail()}")
    answer = response.json()
    assert answer["service"] == name
    return answer


# --- https and http services behind the recommended location block ---------

@pytest.fixture(scope="module")
def mixed_gateway(services, pki, tmp_path_factory):
    """secure (https) and plain (http), both by host name, behind RECOMMENDED_LOCATION."""
    gateway = make_gateway(
        tmp_path_factory.mktemp("mixed") / "nginx",
        discovery_lines(f"discovery_ssl_trusted_certificate  {pki.ca};",
                        service_line("secure", services["secure"].url),
                        service_line("plain", services["plain"].url)),
        location=RECOMMENDED_LOCATION.replace("/path/ca.pem", str(pki.ca)))
    with serving(gateway):
        assert_state(gateway, "secure", "healthy")
        assert_state(gateway, "plain", "healthy")
        yield gateway


def normalized(text):
    """Lines without indentation or runs of blanks, and without empty ones;
    the CA file of proxy_ssl_trusted_certificate read as /path/ca.pem."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return [re.sub(r"^proxy_ssl_trusted_certificate \S+;$",
                   "proxy_ssl_trusted_certificate /path/ca.pem;", line) for line in lines if line]


def test_readme_shows_the_recommended_location():
    block, readme = normalized(RECOMMENDED_LOCATION), normalized((ROOT / "README.md").read_text())
    assert any(readme[i:i + len(block)] == block for i in range(len(readme))), (
        "README.md does not show RECOMMENDED_LOCATION")


def test_example_configuration_uses_the_recommended_location():
    # nginx.conf.example may add directives (websockets) to the block
    example = set(normalized((ROOT / "nginx.conf.example").read_text()))
    assert [line for line in normalized(RECOMMENDED_LOCATION) if line not in example] == []


def test_one_location_routes_https_and_http(mixed_gateway):
    assert echo(mixed_gateway, "secure")["scheme"] == "https"
    assert echo(mixed_gateway, "plain")["scheme"] == "http"


def test_service_sees_its_url_host(mixed_gateway):
    # the client's Host is gateway.test; each service gets its URL's host
    assert echo(mixed_gateway, "secure")["host"] == "localhost"
    assert echo(mixed_gateway, "plain")["host"] == "localhost"


# --- polls over TLS ------------------------------------------------------------

def test_verify_on_without_ca_fails_with_tls_reason(nginx, services):
    # discovery_ssl_verify is on by default; no discovery_ssl_trusted_certificate
    gateway = nginx(discovery_lines(service_line("secure", services["secure"].url)))
    assert_tls_failure(gateway, "secure")


def test_verify_off_polls_without_ca(nginx, services):
    gateway = nginx(discovery_lines("discovery_ssl_verify  off;",
                                    service_line("secure", services["secure"].url)))
    assert_state(gateway, "secure", "healthy")


def test_trusted_certificate_verifies_polls(nginx, services, pki):
    gateway = nginx(discovery_lines("discovery_ssl_verify  on;",
                                    f"discovery_ssl_trusted_certificate  {pki.ca};",
                                    service_line("secure", services["secure"].url)))
    assert_state(gateway, "secure", "healthy")


def test_mutual_tls_without_client_certificate_fails_with_tls_reason(nginx, services, pki):
    gateway = nginx(discovery_lines(f"discovery_ssl_trusted_certificate  {pki.ca};",
                                    service_line("mutual", services["mutual"].url)))
    assert_tls_failure(gateway, "mutual")


def test_mutual_tls_with_client_certificate_polls(nginx, services, pki):
    gateway = nginx(discovery_lines(f"discovery_ssl_trusted_certificate  {pki.ca};",
                                    f"discovery_ssl_certificate  {pki.client_cert};",
                                    f"discovery_ssl_certificate_key  {pki.client_key};",
                                    service_line("mutual", services["mutual"].url)))
    assert_state(gateway, "mutual", "healthy")


# --- credentials in the service URL ------------------------------------------

def masked_url(service):
    return f"http://{USER}:***@127.0.0.1:{service.port}"


@pytest.fixture(scope="module")
def userinfo_gateway(services, tmp_path_factory):
    """guarded with alice's password, and guarded_wrong: the same service
    with a wrong one; the error log at debug level."""
    guarded = services["guarded"]
    gateway = make_gateway(
        tmp_path_factory.mktemp("userinfo") / "nginx",
        discovery_lines(
            service_line("guarded", f"http://{USER}:{PASSWORD}@127.0.0.1:{guarded.port}"),
            service_line("guarded_wrong",
                         f"http://{USER}:{WRONG_PASSWORD}@127.0.0.1:{guarded.port}")),
        log_level="debug")
    with serving(gateway):
        settled(gateway, "guarded")
        settled(gateway, "guarded_wrong")
        yield gateway


def test_userinfo_authenticates_polls(userinfo_gateway):
    assert_state(userinfo_gateway, "guarded", "healthy")
    # the service does check: a wrong password is refused
    entry = assert_state(userinfo_gateway, "guarded_wrong", "unhealthy")
    assert entry["last_error"] == "HTTP status 401"
    # and the service's routes are routed to it
    echo(userinfo_gateway, "guarded")


def test_userinfo_password_masked_on_status_page(userinfo_gateway, services):
    page = httpx.get(userinfo_gateway.url + "/_discovery", timeout=5)
    assert PASSWORD not in page.text and WRONG_PASSWORD not in page.text
    urls = {s["name"]: s["url"] for s in page.json()["services"]}
    assert urls == {"guarded": masked_url(services["guarded"]),
                    "guarded_wrong": masked_url(services["guarded"])}


def test_userinfo_password_never_logged(userinfo_gateway, services):
    # the failed polls of guarded_wrong are logged, with the URL
    settled(userinfo_gateway, "guarded_wrong")
    log = userinfo_gateway.error_log.read_text(errors="replace")
    for password in (PASSWORD, WRONG_PASSWORD):
        for form in (password, base64.b64encode(f"{USER}:{password}".encode()).decode()):
            assert form not in log, f"error.log holds {form!r}"
    named = [line for line in log.splitlines() if f"{USER}:" in line]
    assert all(f"{USER}:***@" in line for line in named), "\n".join(named)
    failed = [line for line in named if '"guarded_wrong"' in line and "[error]" in line]
    assert failed and masked_url(services["guarded"]) in failed[0], "\n".join(named)


# --- host names: an implicit upstream, no resolver ------------------------------

def test_host_name_routes_without_resolver(nginx, services):
    gateway = nginx(discovery_lines(service_line("plain", services["plain"].url)))
    assert_state(gateway, "plain", "healthy")
    echo(gateway, "plain")
    assert "no resolver defined" not in gateway.error_log.read_text(errors="replace")


class NamespaceGateway(Gateway):
    """nginx in a mount namespace of its own, where hosts_file is mounted on
    /etc/hosts: nginx, and nothing else, reads that file for names."""

    def __init__(self, directory, services, hosts_file, **settings):
        super().__init__(directory, services, **settings)
        self.hosts_file = hosts_file

    def start(self):
        # unshare and sh exec: the pid is nginx's, its signals reach nginx
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private",
             "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(self.hosts_file),
             NGINX, "-p", f"{self.dir}/", "-c", str(self.conf), "-e", str(self.error_log),
             "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def loopback_addresses():
    """127.0.0.2, 127.0.0.3 and ::1, those that can be bound here."""
    usable = []
    for family, address in ((socket.AF_INET, "127.0.0.2"), (socket.AF_INET, "127.0.0.3"),
                            (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family) as sock:
                sock.bind((address, 0))
            usable.append(address)
        except OSError:
            pass
    return usable


@pytest.fixture(scope="module")
def namespaces(tmp_path_factory):
    """Skip unless nginx can get a hosts file of its own, and 127.0.0.2 and .3 work."""
    probe = tmp_path_factory.mktemp("hosts") / "hosts"
    probe.write_text(f"127.0.0.2 {MULTI_NAME}\n")
    try:
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount --bind "$0" /etc/hosts && getent ahosts "$1"', str(probe), MULTI_NAME],
            capture_output=True, text=True, timeout=10)
    except FileNotFoundError as error:
        pytest.skip(f"no unshare: {error}")
    if result.returncode != 0 or "127.0.0.2" not in result.stdout:
        pytest.skip(f"nginx cannot have a hosts file of its own here (unshare --mount as root): "
                    f"{result.stderr.strip()}")
    if not {"127.0.0.2", "127.0.0.3"} <= set(loopback_addresses()):
        pytest.skip("127.0.0.2 and 127.0.0.3 cannot be bound")


@pytest.fixture(scope="module")
def multi(namespaces, tmp_path_factory):
    """A service on 127.0.0.2, 127.0.0.3 and (where it works) ::1, the same port."""
    service = HostService("multi", tmp_path_factory.mktemp("multi"),
                          hosts=tuple(loopback_addresses()), url_host=MULTI_NAME)
    with running([service]):
        yield service


def multi_gateway(tmp_path, multi, addresses):
    """nginx polling and routing http://MULTI_NAME:PORT, the name's addresses these."""
    hosts_file = tmp_path / "hosts"
    write_hosts(hosts_file, addresses)
    return make_gateway(tmp_path / "nginx", discovery_lines(service_line("multi", multi.url)),
                        gateway_class=NamespaceGateway, hosts_file=hosts_file)


def write_hosts(hosts_file, addresses):
    # in place: the bind mount holds this inode, a new file would not be seen
    with open(hosts_file, "w") as hosts:
        hosts.write("127.0.0.1 localhost\n")
        hosts.writelines(f"{address} {MULTI_NAME}\n" for address in addresses)


def served_by(gateway, count):
    """The local address of the service that took each of count requests."""
    return [echo(gateway, "multi")["server"][0] for _ in range(count)]


def test_several_addresses_round_robin(tmp_path, multi):
    addresses = multi.hosts
    with serving(multi_gateway(tmp_path, multi, addresses)) as gateway:
        assert_state(gateway, "multi", "healthy")
        seen = served_by(gateway, 3 * len(addresses))
    # one worker, a new connection per request: each address in turn
    assert sorted(seen) == sorted(addresses * 3), seen


def test_reload_resolves_the_name_again(tmp_path, multi):
    with serving(multi_gateway(tmp_path, multi, ["127.0.0.2"])) as gateway:
        assert_state(gateway, "multi", "healthy")
        assert set(served_by(gateway, 3)) == {"127.0.0.2"}

        # resolved when nginx read its configuration, not per request
        write_hosts(gateway.hosts_file, ["127.0.0.3"])
        assert set(served_by(gateway, 3)) == {"127.0.0.2"}

        # the old worker may take a request or two before it stops accepting
        gateway.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: served_by(gateway, 6), lambda seen: set(seen) == {"127.0.0.3"},
                   timeout=START_TIMEOUT, message="requests served on 127.0.0.3 after the reload")
        assert_state(gateway, "multi", "healthy")
        assert "[emerg]" not in gateway.error_log.read_text(errors="replace")


# --- nginx -t ------------------------------------------------------------------

def nginx_t(gateway):
    """nginx -t on the gateway's configuration: (exit code, what it said)."""
    result = subprocess.run([NGINX, "-t", "-p", f"{gateway.dir}/", "-c", str(gateway.conf)],
                            capture_output=True, text=True, timeout=30)
    logged = gateway.error_log.read_text(errors="replace") if gateway.error_log.exists() else ""
    return result.returncode, result.stdout + result.stderr + logged


def line_of(gateway, text):
    """The line number of the configuration's first line holding text."""
    for number, line in enumerate(gateway.conf.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} is not in {gateway.conf}")


def test_nginx_t_accepts_the_tls_configuration(tmp_path, pki):
    gateway = make_gateway(
        tmp_path / "nginx",
        discovery_lines("discovery_ssl_verify  on;",
                        f"discovery_ssl_trusted_certificate  {pki.ca};",
                        f"discovery_ssl_certificate  {pki.client_cert};",
                        f"discovery_ssl_certificate_key  {pki.client_key};",
                        service_line("secure", f"https://localhost:{free_port()}"),
                        service_line("plain", f"http://localhost:{free_port()}"),
                        service_line("guarded",
                                     f"http://{USER}:{PASSWORD}@127.0.0.1:{free_port()}")),
        location=RECOMMENDED_LOCATION.replace("/path/ca.pem", str(pki.ca)))
    code, said = nginx_t(gateway)
    assert code == 0, said
    assert PASSWORD not in said


MISSING = {
    # directive whose file is missing: the http-level lines around it
    "discovery_ssl_trusted_certificate": lambda pki, missing: [
        f"discovery_ssl_trusted_certificate  {missing};"],
    "discovery_ssl_certificate": lambda pki, missing: [
        f"discovery_ssl_certificate  {missing};",
        f"discovery_ssl_certificate_key  {pki.client_key};"],
    "discovery_ssl_certificate_key": lambda pki, missing: [
        f"discovery_ssl_certificate  {pki.client_cert};",
        f"discovery_ssl_certificate_key  {missing};"],
}


@pytest.mark.parametrize("directive", sorted(MISSING))
def test_nginx_t_names_a_missing_file(tmp_path, pki, directive):
    missing = tmp_path / "absent" / "file.pem"
    lines = MISSING[directive](pki, missing)
    gateway = make_gateway(tmp_path / "nginx",
                           discovery_lines(*lines, service_line("secure", "https://127.0.0.1:1")))
    code, said = nginx_t(gateway)
    assert code != 0, said
    assert "unknown directive" not in said, said
    line = line_of(gateway, f"{directive}  {missing}")
    where = rf" in {re.escape(str(gateway.conf))}:{line}\b"
    assert re.search(rf"\[emerg\].*{re.escape(str(missing))}.*{where}", said), said


def test_nginx_t_wants_the_key_of_a_client_certificate(tmp_path, pki):
    gateway = make_gateway(tmp_path / "nginx",
                           discovery_lines(f"discovery_ssl_certificate  {pki.client_cert};",
                                           service_line("secure", "https://127.0.0.1:1")))
    code, said = nginx_t(gateway)
    assert code != 0, said
    assert re.search(r"\[emerg\].*discovery_ssl_certificate_key", said), said


def test_nginx_t_masks_the_password_of_a_bad_url(tmp_path):
    # a configuration error that quotes the URL quotes it masked
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:99999"
    gateway = make_gateway(tmp_path / "nginx", discovery_lines(service_line("guarded", url)))
    code, said = nginx_t(gateway)
    assert code != 0, said
    assert PASSWORD not in said, said
    assert f"{USER}:***@127.0.0.1:99999" in said, said

"""discovery_test: helpers shared by the Python side of the tests and tools
(t/e2e, bench/util.py, soak/probe.py).  t/lib/DiscoveryTest.pm has the same
for the Test::Nginx suites and t/lib/nginx.sh for shell scripts.

    free_port(), free_ports(n)      TCP ports nothing listens on, held
                                    against other takers until used
    wait_until(probe, done, ...)    probe() until done(its result), or
                                    AssertionError after a timeout
    status_page(port)               the discovery_status page, parsed
    wait_ready(port, timeout)       until the status page lists services,
                                    none of them pending
    temp_paths(directory)           nginx http{} lines keeping every
                                    temporary file under directory
    module_version()                the version in debian/changelog, which
                                    the module reports
"""

import collections
import json
import re
import socket
import time
import urllib.request
from pathlib import Path


# A port is chosen before whoever listens on it starts, and a connection made
# meanwhile (a gateway's polls and upstreams) could be given it as its local
# port.  So the latest ports stay bound here, not listening: the kernel never
# hands a bound port to an outgoing connection, free_ports() (binding without
# SO_REUSEADDR) passes it by, and a listener with SO_REUSEADDR (nginx, uvicorn,
# etcd, Prometheus, gRPC) still binds it.  Only the latest are held, so that a
# long test session does not hold a descriptor for every port it ever used.
_RESERVED = collections.deque()
_RESERVE_MAX = 256


def free_ports(n):
    """n distinct TCP ports on 127.0.0.1 nothing listens on, held as above."""
    socks = []
    for _ in range(n):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        socks.append(sock)
    for sock in socks:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _RESERVED.append(sock)
    while len(_RESERVED) > _RESERVE_MAX:
        _RESERVED.popleft().close()
    return [sock.getsockname()[1] for sock in socks]


def free_port():
    """A TCP port nothing listens on right now."""
    return free_ports(1)[0]


def wait_until(probe, done=bool, timeout=10.0, message="condition", interval=0.1):
    """Call probe() until done(its result); return that result.

    Raises AssertionError naming the last result after timeout seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}; "
                                 f"last: {repr(result)[-500:]}")
        time.sleep(interval)


def status_page(port, timeout=2.0):
    """The discovery_status page at 127.0.0.1:port/_discovery, parsed."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_discovery",
                                timeout=timeout) as response:
        return json.loads(response.read())


def _status_or_none(port):
    try:
        return status_page(port)
    except (OSError, ValueError):
        return None


def wait_ready(port, timeout):
    """Wait until the status page lists services and none is pending;
    return the page.  Raises AssertionError after timeout seconds."""
    return wait_until(lambda: _status_or_none(port),
                      lambda page: page and page["services"]
                      and all(s["state"] != "pending" for s in page["services"]),
                      timeout, message=f"no pending service on port {port}")


def temp_paths(directory):
    """nginx http{} lines keeping every temporary file under directory:
    Debian's defaults point to /var/lib/nginx."""
    return "".join(f"    {kind}_temp_path  {directory}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


def module_version():
    """The newest entry's version in debian/changelog, the one the module is
    built with (t/lib/DiscoveryTest.pm has the same for Perl)."""
    changelog = Path(__file__).resolve().parents[2] / "debian" / "changelog"
    with open(changelog, encoding="utf-8") as f:
        first = f.readline()
    match = re.match(r"\S+ \(([^)]+)\)", first)
    if not match:
        raise ValueError(f"{changelog}: no version on its first line")
    return match.group(1)

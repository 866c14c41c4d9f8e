"""discovery_test: helpers shared by the Python side of the tests and tools
(t/e2e, bench/util.py, soak/probe.py).  t/lib/DiscoveryTest.pm has the same
for the Test::Nginx suites and t/lib/nginx.sh for shell scripts.

    free_port(), free_ports(n)      TCP ports nothing listens on right now
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

import json
import re
import socket
import time
import urllib.request
from pathlib import Path


def free_ports(n):
    """n distinct TCP ports on 127.0.0.1 nothing listens on right now."""
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


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

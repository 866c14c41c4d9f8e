"""Registration of a service in etcd, for gateways with ``discovery_registry``.

The service writes ``PREFIX/services/NAME`` = ``{"url": ADVERTISE, ...}``
with an etcd lease of ``ttl`` seconds, through etcd's v3 JSON gateway (httpx;
keys and values base64, as the gateway wants them):

* the key is written once the service answers its own ``GET /health`` at
  its advertised URL, so a gateway never polls a port that is not open yet
  (however long that takes: a warning is logged after ``READY_TIMEOUT``);
* a background thread keeps the lease alive (every ``ttl / 3`` seconds); a
  lease etcd no longer knows (it expired while etcd was unreachable) is
  granted anew and the key written again;
* on shutdown the key is deleted and the lease revoked, so gateways drop the
  service at once; a service that dies without shutting down disappears when
  its lease expires (``ttl`` seconds, and up to etcd's 500 ms expiry tick).

``registry`` is one member's client URL or a list of them, tried in turn.
"""

import base64
import json
import logging
import re
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Union

import httpx

__all__ = ["Registration"]

DEFAULT_PREFIX = "/nginx-discovery/"
# how long the service may take to answer its own health endpoint before a
# warning says it is not registered yet (it still is, once it answers)
READY_TIMEOUT = 60.0
READY_PAUSE = 0.02
# one request to etcd, at most
REQUEST_TIMEOUT = 2.0
# a service name, as discovery_service and the gateways take it
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")

log = logging.getLogger("nginx_discovery.registry")


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class RegistryError(Exception):
    """No member of the registry did what was asked."""


class Registration:
    """A service's key in etcd, kept alive by a background thread."""

    def __init__(
        self,
        registry: Union[str, Sequence[str]],
        name: str,
        advertise: str,
        ttl: int = 10,
        prefix: str = DEFAULT_PREFIX,
        options: Optional[Dict[str, Any]] = None,
    ) -> None:
        members = [registry] if isinstance(registry, str) else list(registry)
        if not members:
            raise ValueError("registry: no member URL")
        if ttl < 2:
            raise ValueError("ttl: at least 2 seconds")
        if not NAME.fullmatch(name):
            raise ValueError("invalid service name %r: 1 to 64 letters, digits, "
                             "'_', '-' or '.'" % name)
        self.members: List[str] = [m.rstrip("/") for m in members]
        self.name = name
        self.advertise = advertise.rstrip("/")
        self.ttl = int(ttl)
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.key = self.prefix + "services/" + name
        document: Dict[str, Any] = {"url": self.advertise}
        document.update(options or {})
        self.value = json.dumps(document, separators=(",", ":"))
        self.lease: Optional[str] = None
        self.registered = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._member = 0
        self._client = httpx.Client(timeout=REQUEST_TIMEOUT)

    # ------------------------------------------------------------ etcd

    def _call(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        """POSTs to the current member, then the others in turn."""
        errors = []
        for _ in range(len(self.members)):
            url = self.members[self._member] + "/v3" + path
            try:
                r = self._client.post(url, json=body)
                answer = r.json()
                if not isinstance(answer, dict):
                    raise ValueError("not a JSON object: %.100r" % (answer,))
                if r.status_code == 200 and "error" not in answer:
                    return answer
                errors.append("%s: %s" % (url, answer.get("message") or answer))
            except (httpx.HTTPError, ValueError) as e:
                errors.append("%s: %s" % (url, e))
            self._member = (self._member + 1) % len(self.members)
        raise RegistryError("; ".join(errors))

    def _grant_and_put(self) -> None:
        answer = self._call("/lease/grant", {"TTL": self.ttl})
        self.lease = answer["ID"]
        self._call("/kv/put", {"key": _b64(self.key), "value": _b64(self.value),
                               "lease": self.lease})

    def _keepalive(self) -> bool:
        """False when etcd no longer knows the lease."""
        answer = self._call("/lease/keepalive", {"ID": self.lease})
        result = answer.get("result", answer)
        return int(result.get("TTL", 0)) > 0

    # ------------------------------------------------------------ life

    def start(self) -> None:
        """Starts the background thread: wait for health, register, keep alive."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="nginx-discovery-registry", daemon=True)
            self._thread.start()

    def _wait_ready(self) -> bool:
        """False once stopped; never gives up before (it gave up after
        READY_TIMEOUT, and the service never registered, silently)."""
        deadline = time.monotonic() + READY_TIMEOUT
        url = self.advertise + "/health"
        while not self._stop.is_set():
            try:
                if self._client.get(url).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if deadline is not None and time.monotonic() >= deadline:
                log.warning("service %s does not answer %s after %gs: it is "
                            "registered once it does", self.name, url,
                            READY_TIMEOUT)
                deadline = None
            self._stop.wait(READY_PAUSE if deadline is not None else 1.0)
        return False

    def _run(self) -> None:
        if not self._wait_ready():
            return
        pause = 0.0
        while not self._stop.wait(pause):
            try:
                if self.lease is None or not self._keepalive():
                    self._grant_and_put()
                    self.registered.set()
                pause = self.ttl / 3.0
            except (RegistryError, KeyError, ValueError, TypeError,
                    AttributeError):
                # every member failed: try again soon, within the lease's life
                pause = min(1.0, self.ttl / 3.0)

    def stop(self) -> None:
        """Stops the thread, deletes the key and revokes the lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=REQUEST_TIMEOUT * 2)
        if self.lease is not None:
            try:
                self._call("/kv/deleterange", {"key": _b64(self.key)})
                self._call("/lease/revoke", {"ID": self.lease})
            except RegistryError:
                pass  # the lease expires by itself
            self.lease = None
        self.registered.clear()
        self._client.close()

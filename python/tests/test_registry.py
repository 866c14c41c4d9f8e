"""Tests of nginx_discovery's registration in etcd, against a fake of etcd's
v3 JSON gateway (t/e2e/test_fleet.py runs it against real etcd)."""

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi import FastAPI

from nginx_discovery import create_service_health_endpoint
from nginx_discovery.registry import Registration


def dead_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return "http://127.0.0.1:%d" % s.getsockname()[1]


class FakeEtcd:
    """Answers /health (the service) and /v3/... (etcd); records the calls."""

    def __init__(self):
        self.calls = []
        self.junk = 0           # answers to give as a JSON list
        self.healthy = True
        self.lease_known = True
        self.grants = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if fake.healthy:
                    self._answer({"status": "healthy"})
                else:
                    self._answer({"status": "starting"}, 503)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.calls.append((self.path, body))
                if fake.junk:
                    fake.junk -= 1
                    self._answer(["not", "etcd"])
                elif self.path == "/v3/lease/grant":
                    fake.grants += 1
                    fake.lease_known = True
                    self._answer({"ID": str(7 + fake.grants), "TTL": body["TTL"]})
                elif self.path == "/v3/lease/keepalive":
                    ttl = "3" if fake.lease_known else "0"
                    self._answer({"result": {"ID": body["ID"], "TTL": ttl}})
                else:
                    self._answer({"header": {"revision": "2"}})

            def _answer(self, doc, status=200):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self):
        return [path for path, _ in self.calls]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def etcd():
    fake = FakeEtcd()
    yield fake
    fake.close()


def wait(probe, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_registers_once_healthy_keeps_alive_and_deletes_on_stop(etcd):
    # the first member is down: the next one is used
    r = Registration([dead_url(), etcd.url], "chat", etcd.url + "/", ttl=3,
                     options={"interval": "1s"})
    r.start()
    assert r.registered.wait(5)
    put = next(body for path, body in etcd.calls if path == "/v3/kv/put")
    assert base64.b64decode(put["key"]) == b"/nginx-discovery/services/chat"
    assert json.loads(base64.b64decode(put["value"])) == {"url": etcd.url, "interval": "1s"}
    assert put["lease"] == "8"

    # a keepalive every ttl / 3; a lease etcd lost is granted and written anew
    wait(lambda: "/v3/lease/keepalive" in etcd.paths())
    etcd.lease_known = False
    wait(lambda: etcd.grants == 2)
    wait(lambda: etcd.paths().count("/v3/kv/put") == 2)

    r.stop()
    assert etcd.paths()[-2:] == ["/v3/kv/deleterange", "/v3/lease/revoke"]
    assert etcd.calls[-1][1] == {"ID": "9"}


def test_the_helper_registers_in_the_apps_life():
    app = FastAPI()
    create_service_health_endpoint(app, "chat", "1", registry="http://127.0.0.1:2379",
                                   advertise="http://127.0.0.1:8001", ttl=5)
    r = app.state.nginx_discovery_registration
    assert r.key == "/nginx-discovery/services/chat" and r.ttl == 5
    assert r.start in app.router.on_startup and r.stop in app.router.on_shutdown


def test_registry_needs_an_advertised_url_and_a_useful_ttl():
    with pytest.raises(ValueError):
        create_service_health_endpoint(FastAPI(), "chat", "1", registry="http://127.0.0.1:2379")
    with pytest.raises(ValueError):
        Registration("http://127.0.0.1:2379", "chat", "http://127.0.0.1:8001", ttl=1)
    with pytest.raises(ValueError):
        Registration([], "chat", "http://127.0.0.1:8001")


def test_a_health_endpoint_that_fails_longer_than_the_wait_still_registers(
        etcd, monkeypatch, caplog):
    # it gave up after READY_TIMEOUT, silently: the service never registered
    monkeypatch.setattr("nginx_discovery.registry.READY_TIMEOUT", 0.1)
    etcd.healthy = False
    r = Registration(etcd.url, "slow", etcd.url, ttl=3)
    r.start()
    time.sleep(0.5)
    assert "/v3/kv/put" not in etcd.paths()
    assert "slow" in caplog.text and "/health" in caplog.text
    etcd.healthy = True
    assert r.registered.wait(5)
    r.stop()


def test_a_name_the_gateways_would_refuse_is_refused_at_once():
    for name in ("", "a/b", "a b", "x" * 65, "caf\u00e9"):
        with pytest.raises(ValueError):
            Registration("http://127.0.0.1:2379", name, "http://127.0.0.1:8001")
    Registration("http://127.0.0.1:2379", "Chat_1.v-2", "http://127.0.0.1:8001")


def test_a_member_answering_json_that_is_not_an_object_is_a_failure(etcd):
    # a list made the thread die (TypeError): the key was never written
    etcd.junk = 2
    r = Registration(etcd.url, "chat", etcd.url, ttl=3)
    r.start()
    assert r.registered.wait(5)
    assert r._thread.is_alive()
    r.stop()

"""A large table's change costs its requests nothing.

Two workers route a 20,000-route table; the document then gains a route.
In a zone with room for it, the publisher builds the table's router image
there, once, and each worker switches to it by viewing it; in a zone with
room for the table only, each worker builds a router of its own in a
thread (the table is over the 256 KB built at once).  Either way requests
go on with the previous router until the new one is there: a route of
both tables answers every time, and the new route is routed by every
worker.
"""

import json
import os
import re
import signal
import threading
import time

import httpx
import pytest

from support import NGINX_PREAMBLE, Gateway, free_port, wait_until

ROUTES = 20000

CONF = NGINX_PREAMBLE + """\
    discovery_zone  {zone};
    discovery_service  big  http://127.0.0.1:{docs} uri=/big.json interval=1s;

    upstream big {{
        server  127.0.0.1:{docs};
    }}

    server {{
        listen  127.0.0.1:{docs};
        location = /big.json {{ root {root}; }}
        location / {{ return 200 "upstream $uri\\n"; }}
    }}

    server {{
        listen  127.0.0.1:{gateway};

        location / {{
            discovery_route  on;
            proxy_pass       http://$discovery_upstream;
            add_header       X-Worker $pid always;
        }}

        location = /_discovery {{
            discovery_status;
        }}
    }}
}}
"""


def code_of(url):
    """A GET's status code, or None while nginx does not listen yet (the
    gateway's start does not wait for it)."""
    try:
        return httpx.get(url).status_code
    except httpx.TransportError:
        return None


def document(extra=(), routes=ROUTES):
    routes = [{"path": f"/big/r{i}/{{id}}"} for i in range(routes)]
    routes += [{"path": path} for path in extra]
    return json.dumps({"version": str(len(routes)), "routes": routes})


@pytest.mark.parametrize("zone, switch", [
    ("64m", "router reads the zone's image of table"),
    ("3m", "built in a thread"),
])
def test_a_large_table_changes_off_the_request_path(tmp_path, zone, switch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.json").write_text(document())
    nginx = Gateway(tmp_path, [], template=CONF, workers=2, log_level="debug",
                    docs=free_port(), root=docs, zone=zone)
    nginx.start()
    try:
        wait_until(nginx.states, lambda s: s == {"big": "healthy"}, 15,
                   message="big healthy")
        wait_until(lambda: code_of(nginx.url + "/big/r7/a"),
                   lambda code: code == 200, 10, message="/big/r7/a routed")

        answers = []
        done = threading.Event()

        def old_route():
            while not done.is_set():
                # a new connection each time: either worker may take it
                r = httpx.get(nginx.url + "/big/r7/a",
                              headers={"Connection": "close"})
                answers.append((r.status_code, r.text))

        hammer = threading.Thread(target=old_route)
        hammer.start()
        try:
            time.sleep(0.3)
            tmp = docs / "big.json.tmp"
            tmp.write_text(document(["/big/added/{id}"]))
            tmp.replace(docs / "big.json")

            # routed by both workers
            workers = set()

            def new_route():
                r = httpx.get(nginx.url + "/big/added/1",
                              headers={"Connection": "close"})
                if r.status_code == 200:
                    workers.add(r.headers["x-worker"])
                return workers

            wait_until(new_route, lambda w: len(w) == 2, 15,
                       message="/big/added/1 routed by both workers",
                       interval=0.01)
            time.sleep(0.3)
        finally:
            done.set()
            hammer.join()

        assert answers, "no request was sent during the change"
        bad = [a for a in answers if a != (200, "upstream /big/r7/a\n")]
        assert not bad, bad[:5]

        log = nginx.error_log.read_text()
        assert switch in log, f"no '{switch}' in the log"
        if zone == "3m":
            assert "has no room for the router of a table" in log
    finally:
        nginx.stop()


def test_replaced_images_are_freed(tmp_path):
    """A zone with room for about three images of a 2,000-route table
    publishes ten changes of it, each with its image, while workers are
    killed on the way: an image goes once no live worker reads it, those
    the killed workers read included, or the zone would fill."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.json").write_text(document(routes=2000))
    nginx = Gateway(tmp_path, [], template=CONF, workers=2, log_level="debug",
                    docs=free_port(), root=docs, zone="2m")
    nginx.start()
    try:
        wait_until(lambda: code_of(nginx.url + "/big/r7/a"),
                   lambda code: code == 200, 15, message="/big/r7/a routed")
        added = []
        for change in range(10):
            added.append(f"/big/added{change}/{{id}}")
            tmp = docs / "big.json.tmp"
            tmp.write_text(document(added, routes=2000))
            tmp.replace(docs / "big.json")

            workers = set()

            def routed():
                r = httpx.get(nginx.url + f"/big/added{change}/1",
                              headers={"Connection": "close"})
                if r.status_code == 200:
                    workers.add(r.headers["x-worker"])
                return workers

            wait_until(routed, lambda w: len(w) == 2, 15, interval=0.01,
                       message=f"change {change} routed by both workers")
            if change in (2, 4, 6):
                os.kill(int(sorted(workers)[0]), signal.SIGKILL)

        log = nginx.error_log.read_text()
        assert "has no room for the router" not in log
        generation = nginx.status()["generation"]
        readers = set(re.findall(
            r"\[debug\] (\d+)#\d+: discovery: router reads the zone's "
            rf"image of table {generation}\b", log))
        assert len(readers) == 2, readers
    finally:
        nginx.stop()


def test_the_table_work_runs_below_the_event_loop(tmp_path):
    """Each worker has its event loop at the priority nginx gave it and two
    background threads at nice +10, where tables are worked out; nginx's
    own thread pool is not started for the module."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.json").write_text(document(routes=10))
    nginx = Gateway(tmp_path, [], template=CONF, workers=2, docs=free_port(),
                    root=docs, zone="4m")
    nginx.start()
    try:
        wait_until(lambda: code_of(nginx.url + "/big/r7/a"),
                   lambda code: code == 200, 15, message="/big/r7/a routed")
        master = int((tmp_path / "logs" / "nginx.pid").read_text())
        workers = [int(p) for p in open(f"/proc/{master}/task/{master}/children")
                   .read().split()]
        assert len(workers) == 2
        for pid in workers:
            nice = {}
            for tid in os.listdir(f"/proc/{pid}/task"):
                stat = open(f"/proc/{pid}/task/{tid}/stat").read()
                nice[int(tid)] = int(stat.rsplit(")", 1)[1].split()[16])
            assert nice.pop(pid) == 0, nice
            assert sorted(nice.values()) == [10, 10], nice
    finally:
        nginx.stop()


def test_a_large_status_page_is_rendered_below_the_event_loop(tmp_path):
    """The status page of a 20,000-route table (over the 256 KB rendered at
    once) is rendered in a background thread: whole, GET and HEAD alike,
    while the worker goes on routing."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.json").write_text(document())
    nginx = Gateway(tmp_path, [], template=CONF, workers=1, log_level="debug",
                    docs=free_port(), root=docs, zone="64m")
    nginx.start()
    try:
        wait_until(lambda: code_of(nginx.url + "/big/r7/a"),
                   lambda code: code == 200, 15, message="/big/r7/a routed")
        pages, routed = [], []

        def read_pages():
            for _ in range(5):
                pages.append(httpx.get(nginx.url + "/_discovery", timeout=30))

        reader = threading.Thread(target=read_pages)
        reader.start()
        while reader.is_alive():
            routed.append(httpx.get(nginx.url + "/big/r9/b").status_code)
        reader.join()

        assert len(pages) == 5
        for page in pages:
            assert page.status_code == 200
            services = page.json()["services"]
            assert len(services[0]["routes"]) == ROUTES
        assert routed and set(routed) == {200}, routed

        head = httpx.head(nginx.url + "/_discovery", timeout=30)
        assert head.status_code == 200
        assert int(head.headers["content-length"]) == len(pages[-1].content)

        log = nginx.error_log.read_text()
        assert len(re.findall(r"discovery: status of a table of \d+ bytes "
                              r"rendered in a background thread", log)) == 6
        assert "[alert]" not in log and "[crit]" not in log
    finally:
        nginx.stop()


API_CONF = CONF.replace(
    "        location = /_discovery {{",
    "        location /_discovery/api/ {{\n"
    "            discovery_api;\n"
    "        }}\n\n"
    "        location = /_discovery {{")


def test_large_api_reads_are_worked_out_below_the_event_loop(tmp_path):
    """The management API's reads of a 20,000-route table (GET /, /services,
    /routes, /overrides: what the dashboard asks every few seconds) are
    answered in a background thread; /explain, which asks the worker's own
    router, on the event loop; the answers are the same either way."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.json").write_text(document())
    nginx = Gateway(tmp_path, [], template=API_CONF, workers=1,
                    log_level="debug", docs=free_port(), root=docs,
                    zone="64m")
    nginx.start()
    try:
        wait_until(lambda: code_of(nginx.url + "/big/r7/a"),
                   lambda code: code == 200, 15, message="/big/r7/a routed")
        api = nginx.url + "/_discovery/api"

        root = httpx.get(api + "/", timeout=30)
        assert root.status_code == 200 and root.json()["write"] is False
        services = httpx.get(api + "/services", timeout=30)
        assert len(services.json()["services"][0]["routes"]) == ROUTES
        routes = httpx.get(api + "/routes?path=/big/r9/b", timeout=30)
        assert [r["path"] for r in routes.json()["routes"]] == ["/big/r9/{id}"]
        one = httpx.get(api + "/services/big", timeout=30)
        assert one.json()["name"] == "big"
        missing = httpx.get(api + "/services/nope", timeout=30)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "ServiceNotFound"
        head = httpx.head(api + "/services", timeout=30)
        assert int(head.headers["content-length"]) == len(services.content)

        explain = httpx.get(api + "/explain?method=GET&path=/big/r9/b",
                            timeout=30)
        assert explain.json()["status"] == 200, explain.text
        assert explain.json()["route"] == "/big/r9/{id}"

        log = nginx.error_log.read_text()
        threaded = re.findall(r"discovery: API answer from a table of \d+ "
                              r"bytes worked out in a background thread", log)
        assert len(threaded) == 6, len(threaded)
        assert "[alert]" not in log and "[crit]" not in log
    finally:
        nginx.stop()

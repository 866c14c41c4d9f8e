"""Many gateways, one registry: a 3-member etcd cluster (Debian's etcd-server),
3 gateways with discovery_registry, and FastAPI services that register
themselves with nginx_discovery's registry=.

`make fleet` runs this file with its measures printed (pytest -s).
FLEET_OUTAGE_SECONDS sets how long every etcd member stays stopped (30).
"""

import base64
import json
import os
import random
import signal
import statistics
import subprocess
import threading
import time

import httpx
import pytest

from support import (
    GATEWAY_SERVER, NGINX_PREAMBLE, ROOT, Gateway, Service, free_port, stop_process,
    tail, wait_until,
)

ETCD = "/usr/bin/etcd"
TTL = 3  # the services' lease, seconds
OUTAGE = float(os.environ.get("FLEET_OUTAGE_SECONDS", "30"))

FLEET_CONF = NGINX_PREAMBLE + """\
    discovery_zone      4m;
    discovery_registry  etcd {etcd} timeout=1s{share};
    discovery_state     {state};
""" + GATEWAY_SERVER.replace("""        location = /_discovery {{""", """\
        location /_discovery/api/ {{
            discovery_api  write=on;
        }}

        location = /_discovery {{""", 1)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def report(line):
    """A measure, shown by `make fleet` (pytest -s) and kept in fleet.log."""
    print(f"fleet: {line}", flush=True)
    with open(ROOT / "build" / "fleet.log", "a") as log:
        log.write(line + "\n")


class Member:
    """One etcd member, restartable on its data directory."""

    def __init__(self, name, directory):
        self.name = name
        self.dir = directory / name
        self.client = free_port()
        self.peer = free_port()
        self.url = f"http://127.0.0.1:{self.client}"
        self.peer_url = f"http://127.0.0.1:{self.peer}"
        self.log = directory / f"{name}.log"
        self.proc = None

    def start(self, cluster):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [ETCD, "--name", self.name, "--data-dir", str(self.dir),
                 "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                 "--listen-peer-urls", self.peer_url,
                 "--initial-advertise-peer-urls", self.peer_url,
                 "--initial-cluster", cluster, "--initial-cluster-state", "new",
                 "--initial-cluster-token", "fleet",
                 "--heartbeat-interval", "100", "--election-timeout", "1000"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        stop_process(self.proc)

    def call(self, path, body, timeout=1.0):
        return httpx.post(self.url + "/v3" + path, json=body, timeout=timeout).json()

    def healthy(self):
        try:
            return httpx.get(self.url + "/health", timeout=1).json().get("health") == "true"
        except (httpx.HTTPError, ValueError):
            return False


class FleetService(Service):
    """t/e2e/fleet_service.py NAME, registering itself in the cluster."""

    def __init__(self, name, directory, registry, prefix="/nginx-discovery/"):
        super().__init__(name, directory, script=ROOT / "t" / "e2e" / "fleet_service.py",
                         args=["--name", name, "--registry", registry, "--ttl", str(TTL),
                               "--prefix", prefix])

    def polls(self):
        """The unix times of the gateways' polls so far."""
        return httpx.get(self.url + "/_polls", timeout=2).json()

    def answers_health(self):
        try:
            return httpx.get(self.url + "/health", timeout=0.5).status_code == 200
        except httpx.TransportError:
            return False


class Fleet:
    def __init__(self, directory):
        self.dir = directory
        self.members = [Member(f"etcd{i}", directory) for i in range(3)]
        self.cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        self.registry = ",".join(m.url for m in self.members)
        self.gateways = []
        self.services = []

    def start(self):
        assert os.path.exists(ETCD), "no etcd: apt-get install etcd-server (make deps)"
        for m in self.members:
            m.start(self.cluster)
        self.wait_members()
        for i in range(3):
            gdir = self.dir / f"gateway{i}"
            gdir.mkdir()
            gw = Gateway(gdir, [], template=FLEET_CONF,
                         etcd=" ".join(m.url for m in self.members),
                         state=gdir / "table.state", share="")
            gw.start()
            self.gateways.append(gw)
        for gw in self.gateways:
            wait_until(lambda gw=gw: gw.status().get("registry", {}).get("state"),
                       lambda state: state == "up", 10, message="the registry up")

    def wait_members(self, members=None):
        for m in members or self.members:
            wait_until(m.healthy, timeout=15, message=f"{m.name} healthy:\n{tail(m.log)}")

    def service(self, name, prefix="/nginx-discovery/"):
        s = FleetService(name, self.dir, self.registry, prefix)
        self.services.append(s)
        return s

    def stop(self):
        for s in self.services:
            s.stop()
        for gw in self.gateways:
            gw.stop()
        for m in self.members:
            m.stop()

    def leader(self):
        for m in self.members:
            try:
                status = m.call("/maintenance/status", {})
            except (httpx.HTTPError, ValueError):
                continue
            if status.get("leader") and status["leader"] == status["header"]["member_id"]:
                return m
        raise AssertionError("no etcd leader")

    def codes(self, path, gateways=None):
        out = []
        for gw in gateways or self.gateways:
            try:
                out.append(httpx.get(gw.url + path, timeout=2).status_code)
            except httpx.TransportError:
                out.append(None)
        return out

    def wait_all(self, path, code, timeout, since):
        """Seconds from `since` until each gateway answers path with code."""
        times = [None] * len(self.gateways)
        deadline = time.monotonic() + timeout
        while None in times and time.monotonic() < deadline:
            for i, gw in enumerate(self.gateways):
                if times[i] is None:
                    try:
                        if httpx.get(gw.url + path, timeout=1).status_code == code:
                            times[i] = time.monotonic() - since
                    except httpx.TransportError:
                        pass
            time.sleep(0.005)
        assert None not in times, (
            f"{path} not {code} on every gateway within {timeout}s: {times}\n"
            + "\n".join(gw.error_log_tail(15) for gw in self.gateways))
        return times


class Load:
    """Requests to the gateways from a few threads; every answer not 200 is a failure."""

    def __init__(self, gateways, path, threads=4):
        self.gateways = gateways
        self.path = path
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        self.stop_event = threading.Event()
        self.ok = 0
        self.failed = []
        self.lock = threading.Lock()

    def _run(self, n):
        with httpx.Client(timeout=5) as client:
            i = n
            while not self.stop_event.is_set():
                gw = self.gateways[i % len(self.gateways)]
                i += 1
                try:
                    code = client.get(gw.url + self.path).status_code
                except httpx.TransportError as e:
                    code = repr(e)
                with self.lock:
                    if code == 200:
                        self.ok += 1
                    else:
                        self.failed.append(code)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "fleet.log").write_text("")
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    try:
        f.start()
        steady = f.service("steady")
        steady.start()
        f.wait_all("/steady/1", 200, 10, time.monotonic())
        yield f
    finally:
        f.stop()


def test_a_service_that_registers_is_routed_by_every_gateway_within_1s(fleet):
    alpha = fleet.service("alpha")
    alpha.launch()
    wait_until(alpha.answers_health, timeout=15, interval=0.002, message="alpha's /health")
    since = time.monotonic()
    times = fleet.wait_all("/alpha/1", 200, 5, since)
    report("registered -> routed by gateway 1, 2, 3 after "
           + ", ".join(f"{t * 1000:.0f} ms" for t in times)
           + f" (median {statistics.median(times) * 1000:.0f} ms) from its /health answering")
    assert max(times) < 1.0, times


def test_a_killed_service_goes_within_ttl_and_a_stopped_one_within_1s(fleet):
    alpha = next(s for s in fleet.services if s.name == "alpha")
    alpha.proc.send_signal(signal.SIGKILL)
    alpha.proc.wait()
    since = time.monotonic()
    times = fleet.wait_all("/alpha/1", 404, TTL + 2, since)
    report(f"SIGKILL (lease TTL {TTL} s) -> gone from gateway 1, 2, 3 after "
           + ", ".join(f"{t:.2f} s" for t in times))

    beta = fleet.service("beta")
    beta.start()
    fleet.wait_all("/beta/1", 200, 5, time.monotonic())
    beta.proc.send_signal(signal.SIGTERM)
    since = time.monotonic()
    times = fleet.wait_all("/beta/1", 404, 1.0, since)
    report("clean shutdown -> gone from gateway 1, 2, 3 after "
           + ", ".join(f"{t * 1000:.0f} ms" for t in times))


def test_an_override_written_to_one_gateway_applies_on_every_gateway(fleet):
    api = fleet.gateways[0].url + "/_discovery/api/overrides"
    since = time.monotonic()
    created = httpx.post(api, json={"action": "disable", "path": "/steady/{item}",
                                    "reason": "fleet test"}, timeout=5)
    assert created.status_code == 201, created.text
    times = fleet.wait_all("/steady/1", 404, 5, since)
    report("an override written to gateway 1's API -> applied by gateway 1, 2, 3 after "
           + ", ".join(f"{t * 1000:.0f} ms" for t in times))
    for gw in fleet.gateways:
        assert [o["reason"] for o in gw.status()["overrides"]] == ["fleet test"]

    # deleted through another gateway
    gone = httpx.delete(fleet.gateways[1].url + "/_discovery/api/overrides/"
                        + created.json()["id"],
                        headers={"Content-Type": "application/json"}, timeout=5)
    assert gone.status_code == 200, gone.text
    fleet.wait_all("/steady/1", 200, 5, time.monotonic())
    for gw in fleet.gateways:
        assert gw.status()["overrides"] == []


def test_the_leader_killed_under_load(fleet):
    leader = fleet.leader()
    with Load(fleet.gateways, "/steady/1") as load:
        time.sleep(1)
        leader.kill()
        time.sleep(4)
    report(f"etcd leader {leader.name} SIGKILLed under load: {load.ok} requests, "
           f"{len(load.failed)} failed")
    assert load.failed == [], load.failed[:10]

    # every gateway watches again, on a member that runs
    for gw in fleet.gateways:
        registry = wait_until(lambda gw=gw: gw.status()["registry"],
                              lambda r: r["state"] == "up" and r["endpoint"] != leader.url,
                              10, message="the watch on another member")
        assert registry["endpoint"] in fleet.registry
    leader.start(fleet.cluster)
    fleet.wait_members([leader])


def test_a_frozen_member_is_left_and_what_is_put_meanwhile_is_routed(fleet):
    """A member frozen (SIGSTOP) while the watches on it are idle: its kernel
    still answers TCP keepalive and it cannot end them, so only the check of
    a silent watch tells. A service put through another member meanwhile is
    routed by every gateway within timeout= (1 s) + 2 s. The member frozen
    is a follower: a frozen leader costs an election too, during which the
    other members end their watches (hasleader), which is not measured here."""
    svc = fleet.service("thawed", prefix="/elsewhere/")  # not in the gateways' prefix
    svc.start()
    leader = fleet.leader()
    watched = [gw.status()["registry"]["endpoint"] for gw in fleet.gateways]
    moved = ""
    if all(url == leader.url for url in watched):
        # every gateway watches the leader: it hands the leadership over
        follower = next(m for m in fleet.members if m is not leader)
        target = follower.call("/maintenance/status", {})["header"]["member_id"]
        leader.call("/maintenance/transfer-leadership", {"targetID": target}, timeout=5)
        wait_until(fleet.leader, lambda m: m is follower, 10, message="the new leader")
        moved = " (the leadership moved from it first)"
        leader = follower
    frozen = max((m for m in fleet.members if m is not leader),
                 key=lambda m: watched.count(m.url))
    others = [m for m in fleet.members if m is not frozen]
    watching = [i for i, url in enumerate(watched) if url == frozen.url]

    frozen.proc.send_signal(signal.SIGSTOP)
    try:
        since = time.monotonic()
        key = b64("/nginx-discovery/services/thawed")
        value = b64(json.dumps({"url": svc.url, "interval": "1s", "timeout": "1s"}))

        def put():
            for m in others:  # the frozen one may have been the leader
                try:
                    if "header" in m.call("/kv/put", {"key": key, "value": value}):
                        return True
                except (httpx.HTTPError, ValueError):
                    pass
            return False

        wait_until(put, timeout=10, message="the put through another member")
        put_at = time.monotonic()
        times = fleet.wait_all("/thawed/1", 200, 1 + 2, put_at)
        left = [gw.status()["registry"] for gw in fleet.gateways]
        report(f"etcd member {frozen.name} frozen (SIGSTOP), watched by gateway "
               + (", ".join(str(i + 1) for i in watching) or "none") + moved
               + f"; a service put {put_at - since:.2f} s later -> routed by gateway "
               "1, 2, 3 after " + ", ".join(f"{t:.2f} s" for t in times))
        for r in left:
            assert r["state"] == "up" and r["endpoint"] != frozen.url, r
        for i in watching:
            assert "did not answer a check" in left[i]["last_error"], left[i]
    finally:
        frozen.proc.send_signal(signal.SIGCONT)
    fleet.wait_members([frozen])
    svc.stop()


def test_every_member_stopped_under_load_then_resync_after_a_compaction(fleet):
    load_gateways = fleet.gateways[:2]
    restarted = fleet.gateways[2]
    with Load(load_gateways, "/steady/1") as load:
        time.sleep(0.5)
        for m in fleet.members:
            m.stop()
        started = time.monotonic()

        for gw in fleet.gateways:
            registry = wait_until(lambda gw=gw: gw.status()["registry"],
                                  lambda r: r["state"] == "down", 10,
                                  message="the registry down")
            assert registry["last_error"], registry

        # a gateway restarted while etcd is down serves from its state file
        restarted.stop()
        restarted.start()
        wait_until(lambda: fleet.codes("/steady/1", [restarted]), lambda c: c == [200], 10,
                   message="the restarted gateway routing steady")
        assert restarted.status()["registry"]["state"] in ("connecting", "down")

        time.sleep(max(0.0, OUTAGE - (time.monotonic() - started)))
        for m in fleet.members:
            m.start(fleet.cluster)
        fleet.wait_members()
        outage = time.monotonic() - started

        # while the gateways reconnect: a new service, then a compaction
        # past every revision they have seen
        m = fleet.members[0]
        value = json.dumps({"url": next(s.url for s in fleet.services if s.name == "steady"),
                            "prefix": ["/gamma"], "interval": "1s"})
        key = "/nginx-discovery/services/gamma"
        m.call("/kv/put", {"key": b64(key), "value": b64(value)})
        m.call("/kv/put", {"key": b64("/nginx-discovery/other"), "value": b64("x")})
        revision = int(m.call("/kv/range", {"key": b64(key)})["header"]["revision"])
        m.call("/kv/compaction", {"revision": revision, "physical": True})
        time.sleep(1)
    report(f"every etcd member stopped for {outage:.1f} s under load: {load.ok} requests, "
           f"{len(load.failed)} failed")
    assert load.failed == [], load.failed[:10]

    for gw in fleet.gateways:
        wait_until(lambda gw=gw: gw.status(),
                   lambda s: s["registry"]["state"] == "up"
                   and s["registry"]["revision"] >= revision
                   and any(x["name"] == "gamma" and x["origin"] == "registry"
                           for x in s["services"]),
                   15, message=f"resync past the compaction at {revision}")
    report(f"members back: every gateway resynced past the compaction at revision {revision}")


SHARE_TTL = 3  # the gateways' lease with share=on, seconds (the module's)


def kill_gateway(gw):
    """SIGKILL to nginx's master and its workers, as a crashed machine."""
    workers = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                with open(f"/proc/{stat}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == gw.proc.pid:
                workers.append(int(stat))
    gw.proc.send_signal(signal.SIGKILL)
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    gw.proc.wait()


def poller(gw, name):
    """The status page's "poller" of service NAME, or None."""
    for s in gw.status().get("services", []):
        if s["name"] == name:
            return s.get("poller")
    return None


def test_share_one_poll_per_interval_for_the_fleet_and_failover(fleet):
    """share=on: three more gateways under their own prefix; a service of
    interval 1s is polled once a second for the whole fleet, and killing
    the gateway that polls it moves its polls to another within a TTL."""
    gateways = []
    for i in range(3):
        gdir = fleet.dir / f"share{i}"
        gdir.mkdir()
        gw = Gateway(gdir, [], template=FLEET_CONF,
                     etcd=" ".join(m.url for m in fleet.members),
                     state=gdir / "table.state", share=" prefix=/shared/ share=on")
        gw.start()
        gateways.append(gw)
    try:
        delta = fleet.service("delta", prefix="/shared/")
        delta.start()
        for gw in gateways:
            wait_until(lambda gw=gw: poller(gw, "delta"),
                       lambda p: p is not None and p["lease"] is not None, 15,
                       message="delta claimed:\n" + gw.error_log_tail(15))
        wait_until(lambda: [poller(gw, "delta") for gw in gateways],
                   lambda ps: sum(p["self"] for p in ps) == 1
                   and len({p["lease"] for p in ps}) == 1, 10,
                   message="one gateway polling delta for all")
        for gw in gateways:
            wait_until(lambda gw=gw: httpx.get(gw.url + "/delta/1", timeout=2).status_code,
                       lambda code: code == 200, 5, message="delta routed")

        window = 6.0
        before = len(delta.polls())
        time.sleep(window)
        hits = len(delta.polls()) - before
        report(f"share=on, 3 gateways, interval 1 s: {hits} polls of the service in "
               f"{window:.0f} s for the whole fleet (without share=on: {3 * window:.0f})")
        assert window - 1 <= hits <= window + 1, hits

        owner = next(gw for gw in gateways if poller(gw, "delta")["self"])
        others = [gw for gw in gateways if gw is not owner]
        lease = poller(owner, "delta")["lease"]
        # anywhere between two of its keepalives, a second apart
        time.sleep(random.uniform(0, 1))
        killed = time.time()
        kill_gateway(owner)
        since = time.monotonic()
        took = wait_until(lambda: [poller(gw, "delta") for gw in others],
                          lambda ps: any(p["self"] and p["lease"] not in (None, lease)
                                         for p in ps),
                          SHARE_TTL + 5, interval=0.02,
                          message="another gateway polling delta")
        moved = time.monotonic() - since
        after = [t for t in delta.polls() if t > killed]
        first = (after[0] - killed) if after else None
        report(f"share=on: the polling gateway SIGKILLed -> another claims the service after "
               f"{moved:.2f} s (TTL {SHARE_TTL} s), first poll after {first:.2f} s"
               if first is not None else
               f"share=on: the polling gateway SIGKILLed -> another claims it after {moved:.2f} s")
        # the bound: within one lease TTL (the others revoke a
        # lease not kept alive for 2 s, rather than wait for etcd to)
        assert moved <= SHARE_TTL, (moved, took)
        wait_until(lambda: [poller(gw, "delta") for gw in others],
                   lambda ps: sum(p["self"] for p in ps) == 1
                   and len({p["lease"] for p in ps}) == 1, 5,
                   message="one of the two left polling delta for both")

        time.sleep(1.5)
        before = len(delta.polls())
        time.sleep(window)
        hits = len(delta.polls()) - before
        report(f"share=on, the 2 gateways left: {hits} polls in {window:.0f} s")
        assert window - 1 <= hits <= window + 1, hits
        for gw in others:
            assert httpx.get(gw.url + "/delta/1", timeout=2).status_code == 200
    finally:
        for gw in gateways:
            if gw.proc.poll() is None:
                gw.stop()


def shared(gw, names):
    """{name: (poller, version)} of the status page's services among names."""
    return {s["name"]: (s.get("poller"), s.get("version"))
            for s in gw.status().get("services", []) if s["name"] in names}


def test_share_routes_of_32_mb_are_read_in_pages_and_a_burst_comes_in_fragments(fleet):
    """share=on, issue 17: another gateway's values under PREFIX/routes/ add
    up to 32 MB in base64, twice what one answer may be: the gateway reads
    them in pages and serves them all (one read of the prefix left its
    registry down). Then, its worker stopped while 24 new values of 1 MB
    and 150 small writes pile up, etcd catches the watch up in one response:
    asked in fragments, it comes in parts of at most 2 MiB (without, one
    message over 16 MB, which the gateway refuses)."""
    prefix, count = "/paged/", 24
    member = fleet.members[0]
    lease = member.call("/lease/grant", {"TTL": 300}, timeout=5)["ID"]
    padding = "p" * 1_000_000
    names = [f"paged{i}" for i in range(count)]

    def put(key, value, bound=True):
        body = {"key": b64(prefix + key), "value": b64(value)}
        if bound:
            body["lease"] = lease
        assert "header" in member.call("/kv/put", body, timeout=10)

    def value(name, version):
        return json.dumps({"state": "healthy", "version": version, "padding": padding,
                           "routes": [{"path": f"/{name}/x", "methods": ["GET"]}]})

    for name in names:
        put(f"services/{name}", json.dumps({"url": "http://127.0.0.1:9",
                                            "prefix": [f"/{name}"]}), bound=False)
        put(f"pollers/{name}", "elsewhere")
        put(f"routes/{name}", value(name, "7"))
    lease_hex = format(int(lease), "x")

    gdir = fleet.dir / "paged"
    gdir.mkdir()
    gw = Gateway(gdir, [], template=FLEET_CONF.replace(
                     "discovery_zone      4m;", "discovery_zone      4m;\n"
                     "    discovery_max_size  2m;"),
                 etcd=" ".join(m.url for m in fleet.members),
                 state=gdir / "table.state", share=f" prefix={prefix} share=on")
    started = time.monotonic()
    gw.start()
    try:
        wait_until(lambda: shared(gw, names),
                   lambda s: len(s) == count and all(
                       p == {"self": False, "lease": lease_hex} and v == "7"
                       for p, v in s.values()), 30,
                   message="every service's shared routes:\n" + gw.error_log_tail(15))
        took = time.monotonic() - started
        registry = gw.status()["registry"]
        report(f"share=on, {count} routes values of 1 MB (32 MB in base64): every one "
               f"applied {took:.2f} s after the gateway started, registry "
               f"{registry['state']}")
        assert registry["state"] == "up" and registry["last_error"] is None, registry

        # the burst: the watching worker stopped while the writes pile up
        workers = [int(p) for p in os.listdir("/proc") if p.isdigit()
                   and _parent(int(p)) == gw.proc.pid]
        assert workers
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            # etcd's channel to the watch holds 128 responses: the writes
            # after it is full come in one, 16 values of 1 MB of it (140
            # writes were enough for that, 60 were not; each takes etcd
            # about 45 ms while a watcher is stuck)
            for name in names[:8]:
                put(f"routes/{name}", value(name, "8"))
            with httpx.Client() as client:
                for i in range(150):
                    answer = client.post(member.url + "/v3/kv/put", json={
                        "key": b64(f"{prefix}noise/{i}"), "value": b64("v")}, timeout=10)
                    assert "header" in answer.json(), answer.text
            for name in names[8:]:
                put(f"routes/{name}", value(name, "8"))
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        since = time.monotonic()
        wait_until(lambda: shared(gw, names),
                   lambda s: all(v == "8" for p, v in s.values()), 30,
                   message="the burst applied:\n" + gw.error_log_tail(15))
        report(f"share=on, a burst of {count} values of 1 MB and 150 writes to a "
               f"stopped watcher: applied {time.monotonic() - since:.2f} s after it "
               f"went on")
        registry = gw.status()["registry"]
        assert registry["state"] == "up" and registry["last_error"] is None, registry
        assert "too large" not in gw.error_log.read_text()
    finally:
        gw.stop()
        member.call("/lease/revoke", {"ID": lease}, timeout=5)
        member.call("/kv/deleterange", {"key": b64(prefix), "range_end": b64("/paged0")},
                    timeout=5)


def _parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None

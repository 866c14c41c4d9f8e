#!/usr/bin/python3
"""soak/probe.py: the measuring side of soak/run.sh.

    probe.py ports N                    N free loopback TCP ports
    probe.py wait-listen SECONDS PORT...  until each port accepts
    probe.py wait-ready PORT SECONDS    until /_discovery lists no pending
                                        service (exit 1 on timeout)
    probe.py sample MASTER PORT ZONE    one JSON line: RSS of the master and
                                        of each worker, the status page's
                                        generation and routes, zone pages
    probe.py show FILE [LABEL]          a sample line, readable
    probe.py targets FILE               the request mix for soak.lua
    probe.py report DIR                 the final report (exit 1 when the
                                        gateway is to blame for an error)

The zone's page usage is read from the slab pool header at the start of the
shared mapping (/proc/MASTER/mem, as root): ngx_slab_pool_t of nginx 1.22 on
x86_64, pages/last/stats/pfree/start/end at offsets 32/40/72/80/88/96.  The
status page does not expose it; this needs no module change.
"""

import json
import os
import socket
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "t", "lib"))
import discovery_test  # noqa: E402
from discovery_test import free_ports, status_page  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------ status

def wait_ready(port, seconds):
    """0 once the status page lists no pending service, 1 after seconds."""
    try:
        discovery_test.wait_ready(port, seconds)
        return 0
    except AssertionError:
        return 1


# ------------------------------------------------------------------ /proc

def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        return None
    return out


def kib(v):
    return int(v.split()[0]) if v else 0


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_status(int(d))
        if st and st.get("PPid") == str(ppid):
            out.append(int(d))
    return sorted(out)


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def zone_pages(master, zone_bytes):
    """(used, total, slab_fails) of the discovery zone, or None."""
    try:
        maps = open("/proc/%d/maps" % master).read().splitlines()
        mem = open("/proc/%d/mem" % master, "rb")
    except OSError:
        return None
    with mem:
        for line in maps:
            f = line.split()
            if len(f) < 6 or not f[1].endswith("s") or "/dev/zero" not in line:
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            if hi - lo != zone_bytes:
                continue
            try:
                mem.seek(lo)
                hdr = mem.read(104)
            except OSError:
                continue
            min_size, min_shift, pages, last = struct.unpack_from("<QQQQ", hdr, 16)
            stats, pfree, start, end = struct.unpack_from("<QQQQ", hdr, 72)
            if not (lo < pages < last <= start < end <= hi and min_shift == 3):
                continue
            total = (last - pages) // 24          # sizeof(ngx_slab_page_t)
            fails = 0
            nslots = (PAGE.bit_length() - 1) - min_shift
            if lo < stats < hi:
                mem.seek(stats)
                raw = mem.read(32 * nslots)
                for i in range(nslots):
                    fails += struct.unpack_from("<QQQQ", raw, 32 * i)[3]
            return total - pfree, total, fails
    return None


def sample(master, port, zone_bytes):
    now = time.time()
    ms = proc_status(master) or {}
    workers, old = [], 0
    for pid in children(master):
        cl = cmdline(pid)
        st = proc_status(pid)
        if not st or "worker process" not in cl:
            continue
        if "shutting down" in cl:
            old += 1
            continue
        workers.append({"pid": pid, "rss": kib(st.get("VmRSS")),
                        "fds": nfds(pid)})
    s = {"time": now, "master_rss": kib(ms.get("VmRSS")),
         "workers": workers, "old_workers": old}
    try:
        st = status_page(port)
        s["generation"] = st.get("generation")
        s["services"] = {x["name"]: {"state": x["state"],
                                     "routes": len(x.get("routes") or [])}
                         for x in st["services"]}
        s["routes"] = sum(v["routes"] for v in s["services"].values())
        s["conflicts"] = len(st.get("conflicts") or [])
    except Exception as e:
        s["status_error"] = str(e)
    z = zone_pages(master, zone_bytes)
    if z:
        s["zone_used_pages"], s["zone_total_pages"], s["zone_slab_fails"] = z
    return s


def show(s, label=""):
    w = s["workers"]
    lines = ["--- %s" % label if label else "---"]
    lines.append("worker RSS: sum %.1f MiB over %d workers (%s); master %.1f MiB"
                 % (sum(x["rss"] for x in w) / 1024, len(w),
                    ", ".join("pid %d %.1f MiB, %d fds" % (x["pid"], x["rss"] / 1024, x["fds"])
                              for x in w),
                    s["master_rss"] / 1024))
    if "status_error" in s:
        lines.append("status page: ERROR %s" % s["status_error"])
    else:
        lines.append("status page: generation %s, %d routes (%s), %d conflicts"
                     % (s["generation"], s["routes"],
                        ", ".join("%s %s/%d" % (k, v["state"], v["routes"])
                                  for k, v in sorted(s["services"].items())),
                        s["conflicts"]))
    if "zone_used_pages" in s:
        lines.append("zone: %d of %d pages used (%.1f KiB of %.1f KiB), "
                     "slab allocation failures %d"
                     % (s["zone_used_pages"], s["zone_total_pages"],
                        s["zone_used_pages"] * PAGE / 1024,
                        s["zone_total_pages"] * PAGE / 1024,
                        s["zone_slab_fails"]))
    else:
        lines.append("zone: page usage not readable")
    return "\n".join(lines)


# ------------------------------------------------------------------ workload

def targets(path):
    """class method path, one request a line; soak.lua cycles through them.

    stable  GET on routes of always-healthy services with static routes, and
            the churn service's always-published core: must be 200
    405     a method the route does not publish: must be 405
    404     a path no service ever publishes: must be 404
    churn   the churn service's rotating routes: 200 or 404 by design
    flap    the flapping services' routes: 200, or 503 while unhealthy
    """
    import uuid
    lines = []
    for i in range(1200):
        k = i % 200
        svc = ("stable-a", "stable-b")[i % 2]
        lines.append(("stable", "GET", "/%s/r%d/items/%d" % (svc, k, i)))
        if i % 4 == 0:
            lines.append(("stable", "GET", "/%s/users/u%d/orders/%s"
                          % (svc, i, uuid.UUID(int=i))))
            lines.append(("stable", "GET", "/%s/files/a/b/%d.txt" % (svc, i)))
        if i % 6 == 0:
            lines.append(("stable", "POST", "/%s/items" % svc))
            lines.append(("stable", "GET", "/churn/core/%d" % i))
            lines.append(("stable", "GET", "/churn/core/info"))
        if i % 20 == 0:
            lines.append(("405", "POST", "/%s/r%d/items/%d" % (svc, k, i)))
            lines.append(("404", "GET", "/nowhere/%d" % i))
            lines.append(("404", "GET", "/%s/r%d/items/notanint" % (svc, k)))
        if i % 3 == 0:
            lines.append(("churn", "GET", "/churn/f%d/%d" % (i % 10, i)))
        if i % 3 == 1:
            f = ("flap-a", "flap-b")[i % 2]
            lines.append(("flap", "GET", "/%s/x/%d" % (f, i)))
            lines.append(("flap", "GET", "/%s/y" % f))
    import random
    random.Random(1).shuffle(lines)
    with open(path, "w") as f:
        for c, m, p in lines:
            f.write("%s %s %s\n" % (c, m, p))
    mix = {}
    for c, _, _ in lines:
        mix[c] = mix.get(c, 0) + 1
    print("request mix: " + ", ".join("%s %d" % kv for kv in sorted(mix.items())))


# ------------------------------------------------------------------ report

EXPECTED = {"stable": {200}, "405": {405}, "404": {404}}


def parse_wrk(text):
    out = {"requests": 0, "rps": 0.0, "non2xx": 0, "socket": {}}
    for line in text.splitlines():
        f = line.split()
        if "requests in" in line:
            out["requests"] = int(f[0])
            out["duration"] = f[3].rstrip(",")
        elif "threads and" in line and "connections" in line:
            out["connections"] = int(f[3])
        elif line.startswith("Requests/sec:"):
            out["rps"] = float(f[1])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            out["non2xx"] = int(f[-1])
        elif line.strip().startswith("Socket errors:"):
            for part in line.split(":", 1)[1].split(","):
                k, v = part.split()
                out["socket"][k] = int(v)
        elif line.strip().startswith("Latency") and "Distribution" not in line:
            out["latency"] = " ".join(f[1:4])
    return out


def trend(samples, key):
    vals = [key(s) for s in samples]
    return vals


def report(d):
    rc = 0
    wrk = parse_wrk(open(os.path.join(d, "wrk.out")).read())
    counts = {}
    try:
        for line in open(os.path.join(d, "counts.txt")):
            c, st, n = line.split()
            counts.setdefault(c, {})[int(st)] = int(n)
    except OSError:
        print("no per-class counts (soak.lua's done() did not run)")
    samples = [json.loads(l) for l in open(os.path.join(d, "timeline.jsonl"))]
    warmup = float(os.environ.get("SOAK_WARMUP", "30"))
    t0 = samples[0]["time"]

    print("=== traffic")
    print("total requests: %d in %s, %.0f requests/s, latency avg/stdev/max %s"
          % (wrk["requests"], wrk.get("duration", "?"), wrk["rps"],
             wrk.get("latency", "?")))
    print("wrk's Non-2xx or 3xx responses: %d" % wrk["non2xx"])
    sock = wrk["socket"]
    print("socket errors: %s" % (", ".join("%s %d" % kv for kv in sock.items())
                                 if sock else "none"))
    total_by_status = {}
    for c, by in counts.items():
        for st, n in by.items():
            total_by_status[st] = total_by_status.get(st, 0) + n
    print("non-2xx by status (all classes): %s"
          % (", ".join("%d: %d" % kv for kv in sorted(total_by_status.items())
                       if not 200 <= kv[0] < 300) or "none"))
    gateway = 0
    for c in ("stable", "405", "404", "churn", "flap", "untagged"):
        by = counts.get(c)
        if not by:
            continue
        n = sum(by.values())
        desc = ", ".join("%d: %d" % kv for kv in sorted(by.items()))
        if c in EXPECTED:
            bad = sum(v for k, v in by.items() if k not in EXPECTED[c])
            gateway += bad
            print("  %-8s %8d requests (%s); must be %s: %d wrong"
                  % (c, n, desc, "/".join(map(str, EXPECTED[c])), bad))
        elif c == "untagged":
            gateway += n
            print("  untagged %8d responses without X-Soak-Class (%s)" % (n, desc))
        else:
            unexpected = sum(v for k, v in by.items() if k not in (200, 404, 503))
            print("  %-8s %8d requests (%s)%s" % (
                c, n, desc, "; by design 404 when a route is not published "
                "at the moment" if c == "churn" else
                "; by design 503 while the service is unhealthy, 404 while "
                "it has no routes (a failed first poll)"))
            if unexpected:
                gateway += unexpected
                print("           %d answers neither 200, 404 nor 503: counted "
                      "against the gateway" % unexpected)
    print("errors attributable to the gateway: %d" % gateway)
    reloads = int(open(os.path.join(d, "reloads")).read() or 0)
    nsock = sum(sock.values())
    if nsock and reloads:
        print("  (socket errors are not in that count: wrk counts a request "
              "written on a keepalive connection that a gracefully exiting "
              "old worker closes at reload as a read error; %d reloads x %d "
              "connections bound it at %d)"
              % (reloads, wrk.get("connections", 0),
                 reloads * wrk.get("connections", 0)))
        if nsock > reloads * wrk.get("connections", 0):
            print("  FLAG: more socket errors than reloads can explain")
            rc = 1
    elif nsock:
        print("  FLAG: socket errors without any reload")
        rc = 1
    if gateway:
        rc = 1

    print("=== memory")
    print("  %6s %6s %10s %10s %-18s %6s %6s %9s" % (
        "t(s)", "gen", "master", "workers", "per worker (MiB)", "fds", "routes",
        "zone pg"))
    for s in samples:
        w = s["workers"]
        print("  %6.0f %6s %8.1fMi %8.1fMi %-18s %6s %6s %9s" % (
            s["time"] - t0, s.get("generation", "?"), s["master_rss"] / 1024,
            sum(x["rss"] for x in w) / 1024,
            "/".join("%.1f" % (x["rss"] / 1024) for x in w),
            "/".join(str(x["fds"]) for x in w), s.get("routes", "?"),
            s.get("zone_used_pages", "?")))
    post = [s for s in samples if s["time"] - t0 >= warmup]
    if len(post) >= 4:
        k = min(3, len(post) // 2)
        for name, key, floor in (
                ("master RSS", lambda s: s["master_rss"], 1024),
                ("worker RSS sum", lambda s: sum(x["rss"] for x in s["workers"]), 2048),
                ("max worker RSS", lambda s: max([x["rss"] for x in s["workers"]] or [0]), 1024),
                ("max worker fds", lambda s: max([x["fds"] for x in s["workers"]] or [0]), 0),
                ("zone used pages", lambda s: s.get("zone_used_pages", 0), 0)):
            a = statistics.median(key(s) for s in post[:k])
            b = statistics.median(key(s) for s in post[-k:])
            grow = b - a
            noise = max(floor, 0.05 * a)
            if "fds" in name or "zone" in name:
                noise = max(2, 0.10 * a) if "fds" in name else max(4, 0.25 * a)
            flag = "GROWTH" if grow > noise else "flat"
            print("%s after warm-up (%.0f s): %s -> %s (%+d), noise bound %d: %s"
                  % (name, warmup, a, b, grow, noise, flag))
            if flag == "GROWTH":
                print("  FLAG: %s grows beyond noise after warm-up" % name)
    else:
        print("too few samples after warm-up to judge growth")
    return rc


def main():
    cmd = sys.argv[1]
    if cmd == "ports":
        print(" ".join(map(str, free_ports(int(sys.argv[2])))))
    elif cmd == "wait-listen":
        end = time.time() + float(sys.argv[2])
        for port in map(int, sys.argv[3:]):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
                except OSError:
                    if time.time() > end:
                        sys.exit(1)
                    time.sleep(0.05)
    elif cmd == "wait-ready":
        sys.exit(wait_ready(int(sys.argv[2]), float(sys.argv[3])))
    elif cmd == "sample":
        print(json.dumps(sample(int(sys.argv[2]), int(sys.argv[3]),
                                int(sys.argv[4]))))
    elif cmd == "show":
        line = open(sys.argv[2]).read().splitlines()[-1]
        print(show(json.loads(line), sys.argv[3] if len(sys.argv) > 3 else ""))
    elif cmd == "targets":
        targets(sys.argv[2])
    elif cmd == "report":
        sys.exit(report(sys.argv[2]))
    else:
        sys.exit("unknown command %s" % cmd)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""util.py: the parts of bench/run.sh that are easier in Python.

    util.py port                        a free TCP port on 127.0.0.1
    util.py wait-status URL SVC H U     until the status page at URL shows
                                        SVC healthy and, over all services,
                                        at least H healthy and U unhealthy
    util.py check URL PATHS COUNT [routing]
                                        COUNT paths of PATHS through URL must
                                        answer 200 "ok" (the backend's); with
                                        routing, an unknown path must not
    util.py wrk OUTFILE TICKS           "rps p50_ms p99_ms errors cpu_us busy"
                                        of a wrk --latency run during which
                                        the gateway's worker used TICKS
                                        clock ticks: its CPU time per request
                                        and the share of its core it used
    util.py report TSV TITLE            markdown table of the median of the
                                        rounds in TSV (see run.sh), with each
                                        gateway's ratio to BASELINE, of the
                                        medians and per round
    util.py paired TSV                  markdown table of paired rounds:
                                        two gateways loaded at once on one
                                        core, B's req/s over A's per round
    util.py micro JSON                  markdown of router_bench's results
    util.py mutate DOC LOG              every second, DOC gains a route
                                        /added/N/{id} (written whole, then
                                        renamed over DOC); each change is
                                        logged as "N unix_time" to LOG
    util.py settled URL LOG [LIMIT]     until URL routes the last route
                                        mutate logged
    util.py propagation URL LOG COUNT WORKERS [LIMIT]
                                        for the next COUNT routes mutate
                                        adds: from the write of DOC until
                                        each of WORKERS worker processes
                                        (told apart by X-Worker) routes it
    util.py private PID...              MB of private memory of each
                                        process (smaps_rollup), and of its
                                        mappings but the shared zone's
    util.py first-routed URL SINCE      seconds from SINCE (unix time) to
                                        the first 200 from URL
    util.py toggle DIR DOCS URL N STEP PID...
                                        N table changes: DIR/svc0.json to
                                        svc{DOCS-1}.json in turn each gain
                                        or lose /mem/sK/{id}, each change
                                        waited for until URL routes (or no
                                        longer routes) it; every STEP
                                        changes, 3 s later, a line "N
                                        seconds private-MB" of the PIDs
"""

import http.client
import json
import os
import random
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "t", "lib"))
from discovery_test import free_port, wait_until  # noqa: E402


def cmd_port():
    print(free_port())


def cmd_wait_status(url, service, healthy, unhealthy, timeout=120):
    healthy, unhealthy = int(healthy), int(unhealthy)

    def counts():
        """(service's state, healthy services, unhealthy services)"""
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                doc = json.load(r)
            states = {s["name"]: s["state"] for s in doc["services"]}
        except (OSError, ValueError, KeyError):
            return None
        return (states.get(service),
                sum(v == "healthy" for v in states.values()),
                sum(v == "unhealthy" for v in states.values()))

    try:
        wait_until(counts, lambda c: c and c[0] == "healthy"
                   and c[1] >= healthy and c[2] >= unhealthy,
                   timeout, message=f"{url}: {service} healthy, "
                   f">= {healthy} healthy, >= {unhealthy} unhealthy",
                   interval=0.2)
    except AssertionError as error:
        sys.exit(f"util.py: {error}")


def cmd_check(url, paths_file, count, routing=""):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    with open(paths_file) as f:
        paths = [line.strip() for line in f if line.strip()]
    step = max(1, len(paths) // int(count))
    sample = paths[::step][:int(count)]
    for path in sample:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or body != b"ok\n":
            sys.exit(f"util.py: {url}{path}: {r.status} {body[:200]!r}")
    if not routing:
        print(f"{len(sample)} paths ok")
        return
    # a path no route has: proves the gateway routes, not a catch-all
    conn.request("GET", "/no/such/route")
    r = conn.getresponse()
    r.read()
    if r.status == 200:
        sys.exit(f"util.py: {url}/no/such/route answered 200")
    print(f"{len(sample)} paths ok")


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def latency_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def cmd_wrk(outfile, ticks):
    text = open(outfile).read()
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s)", text)
    requests = int(m.group(1))
    seconds = float(m.group(2)) * UNITS[m.group(3)] / 1e3
    cpu = int(ticks) / os.sysconf("SC_CLK_TCK")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = latency_ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = latency_ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    print(f"{rps:.0f} {p50:.3f} {p99:.3f} {errors} "
          f"{cpu * 1e6 / max(requests, 1):.2f} {100 * cpu / seconds:.0f}")


def cmd_report(tsv, title, baseline="plain"):
    """TSV rows: size gateway round rps p50 p99 errors cpu_us busy."""
    rows = {}
    for line in open(tsv):
        f = line.split()
        rows.setdefault((int(f[0]), f[1]), []).append(
            [float(x) for x in f[3:]])

    # each round runs every gateway of a size back to back: a gateway's
    # ratio to the baseline in the same round cancels the machine's drift
    # between rounds, which on a shared machine can exceed the differences
    # measured
    by_round = {}
    for line in open(tsv):
        f = line.split()
        by_round[(int(f[0]), f[1], f[2])] = [float(x) for x in f[3:]]

    def paired(key, field):
        ratios = []
        for (size, gw, rnd), v in by_round.items():
            base = by_round.get((size, baseline, rnd))
            if (size, gw) == key and base and base[field] > 0:
                ratios.append(v[field] / base[field])
        if not ratios:
            return "-"
        return (f"{statistics.median(ratios):.3f} "
                f"({min(ratios):.2f}-{max(ratios):.2f})")

    med = {}
    for key, rs in rows.items():
        col = list(zip(*rs))
        med[key] = dict(rps=statistics.median(col[0]),
                        p50=statistics.median(col[1]),
                        p99=statistics.median(col[2]),
                        errors=int(sum(col[3])),
                        cpu=statistics.median(col[4]),
                        busy=statistics.median(col[5]),
                        n=len(rs), lo=min(col[0]), hi=max(col[0]))

    rank = {"plain": 0, "handwritten": 1, "module": 2, "metrics": 3,
            "balancer": 4, "balancer-metrics": 5,
            "idle": 0, "churn": 1, "idle2": 2}
    order = sorted(rows, key=lambda k: (k[0], rank.get(k[1], 9)))

    print(f"### {title}\n")
    print(f"| routes | gateway | rounds | req/s | req/s min-max "
          f"| p50 ms | p99 ms | gateway CPU us/req | worker busy "
          f"| req/s vs {baseline} | p99 vs {baseline} "
          f"| CPU/req vs {baseline} | errors "
          f"| req/s vs {baseline}, per round | p99 vs {baseline}, per round |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:"
          "|---:|---:|")
    for key in order:
        m = med[key]
        base = med.get((key[0], baseline))

        def ratio(field, fmt):
            if not base or base[field] <= 0:
                return "-"
            return format(m[field] / base[field], fmt)

        print(f"| {key[0]} | {key[1]} | {m['n']} | {m['rps']:.0f} "
              f"| {m['lo']:.0f}-{m['hi']:.0f} | {m['p50']:.3f} "
              f"| {m['p99']:.3f} | {m['cpu']:.1f} | {m['busy']:.0f}% "
              f"| {ratio('rps', '.3f')} | {ratio('p99', '.2f')} "
              f"| {ratio('cpu', '.2f')} | {m['errors']} "
              f"| {paired(key, 0)} | {paired(key, 2)} |")
    print()
    print(f"Ratios \"vs {baseline}\" are of the medians over rounds; \"per "
          f"round\" ones are the median (min-max) of each round's ratio to "
          f"{baseline} measured in the same round.")
    print()


def cmd_paired(tsv):
    """TSV rows: size gateway_a gateway_b round rps_a rps_b ns_a ns_b
    requests_a requests_b (the workers' CPU time and the requests wrk
    completed in the round)."""
    pairs = {}
    for line in open(tsv):
        f = line.split()
        pairs.setdefault((int(f[0]), f[1], f[2]), []).append(
            [float(x) for x in f[4:10]])

    def spread(values):
        return (f"**{statistics.median(values):.3f}** "
                f"({min(values):.3f}-{max(values):.3f})")

    print("| routes | A | B | rounds | A req/s | B req/s "
          "| B / A req/s, per round | A / B CPU per request, per round |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    for (size, a, b), rounds in pairs.items():
        ratios = [r[1] / r[0] for r in rounds]
        # A's CPU per request over B's: as req/s, above 1 where B costs less
        cpu = [(r[2] / r[4]) / (r[3] / r[5]) for r in rounds]
        print(f"| {size} | {a} | {b} | {len(rounds)} "
              f"| {statistics.median(r[0] for r in rounds):.0f} "
              f"| {statistics.median(r[1] for r in rounds):.0f} "
              f"| {spread(ratios)} | {spread(cpu)} |")
    print()


def cmd_micro(path):
    doc = json.load(open(path))
    print("| benchmark | median wall | median CPU | unit | counters |")
    print("|---|---:|---:|---|---|")
    for b in doc["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") \
                != "median":
            continue
        name = b.get("run_name", b["name"])
        counters = []
        if "items_per_second" in b:
            counters.append(f"{b['items_per_second'] / 1e6:.2f} M lookups/s")
        if "bytes_per_route" in b:
            counters.append(f"{b['bytes_per_route']:.1f} bytes/route "
                            f"({b['snapshot_bytes']:.0f} bytes)")
        if "bytes_per_second" in b:
            counters.append(f"{b['bytes_per_second'] / 1e6:.1f} MB/s")
        # TableChange: each stage of a publication, ms of thread CPU
        counters += [f"{k[:-3]} {v:.1f} ms" for k, v in sorted(b.items())
                     if k.endswith("_ms")]
        print(f"| {name} | {b['real_time']:.1f} | {b['cpu_time']:.1f} "
              f"| {b['time_unit']} "
              f"| {', '.join(counters)} |")
    print()


def cmd_mutate(doc_path, log_path):
    import time
    with open(doc_path) as f:
        doc = json.load(f)
    # the document as text, cut where its routes end: a change appends a
    # route there, rather than serializing all of them again (14 ms of the
    # load's core at 25,000 routes, a burst that held up wrk and the
    # backend, and showed as the gateway's p99)
    routes = doc.pop("routes")
    doc["routes"] = None
    text = json.dumps(doc, separators=(",", ":"))
    cut = text.index('"routes":null') + len('"routes":')
    head = text[:cut] + json.dumps(routes, separators=(",", ":"))[:-1]
    tail = "]" + text[cut + len("null"):]
    sep = "," if routes else ""
    n = 0
    while True:
        n += 1
        head += sep + json.dumps({"path": f"/added/{n}/{{id}}",
                                  "methods": ["GET"]},
                                 separators=(",", ":"))
        sep = ","
        tmp = doc_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(head)
            f.write(tail)
        os.replace(tmp, doc_path)
        with open(log_path, "a") as f:
            f.write(f"{n} {time.time():.6f}\n")
        # a second apart on average, at every phase of the polls: a change
        # a fixed second apart would meet the 1 s polls at the same moment
        # of their interval each time, and the propagation measured would
        # be that one moment's
        time.sleep(random.uniform(0.5, 1.5))


def cmd_settled(url, log_path, limit=30):
    """Until URL routes the last route mutate logged (a stopped mutator's):
    the gateway has published every change it was given."""
    limit = float(limit)
    u = urllib.parse.urlsplit(url)
    with open(log_path) as f:
        lines = [line for line in f.read().split("\n") if line]
    if not lines:
        return
    n = int(lines[-1].split()[0])

    def routed():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        try:
            conn.request("GET", f"/added/{n}/x")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    wait_until(routed, timeout=limit, message=f"change {n} routed",
               interval=0.02)


def cmd_propagation(url, log_path, count, workers, limit=10):
    """Prints one line per route: seconds until each worker routed it,
    within `limit` seconds."""
    count, workers, limit = int(count), int(workers), float(limit)
    u = urllib.parse.urlsplit(url)

    def last_change():
        try:
            with open(log_path) as f:
                lines = f.read().split("\n")
            n, t = [line for line in lines if line][-1].split()
            return int(n), float(t)
        except (OSError, ValueError, IndexError):
            return 0, 0.0

    n0, _ = last_change()
    for _ in range(count):
        # the next change, from its start
        deadline = time.time() + 10
        while last_change()[0] <= n0 and time.time() < deadline:
            time.sleep(0.001)
        n, written = last_change()
        if n <= n0:
            sys.exit("util.py: the document did not change")
        n0 = n
        seen = {}
        while len(seen) < workers and time.time() < written + limit:
            # a new connection each time: any worker may take it
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
            conn.request("GET", f"/added/{n}/x",
                         headers={"Connection": "close"})
            r = conn.getresponse()
            r.read()
            pid = r.getheader("X-Worker")
            if r.status == 200 and pid not in seen:
                seen[pid] = time.time() - written
            conn.close()
            time.sleep(0.002)
        if len(seen) < workers:
            sys.exit(f"util.py: route {n} not routed by every worker in "
                     f"{limit:g} s")
        print(f"{n} {max(seen.values()):.3f}")


def cmd_private(*pids):
    print(private_mb(pids))


def private_mb(pids):
    """MB of Private_Clean + Private_Dirty (+ Private_Hugetlb) per pid, from
    smaps_rollup, then "/" and the same outside shared mappings (the
    discovery zone): the kernel counts a page of the zone that only one
    process has touched as that process's private memory, though it is
    the zone's, and one worker alone touches all of it."""
    out = []
    for pid in pids:
        kb = 0
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Private_"):
                    kb += int(line.split()[1])
        own = 0
        shared = False
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                fields = line.split()
                if "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:
                    shared = fields[1][3:4] == "s"  # a mapping's first line
                elif line.startswith("Private_") and not shared:
                    own += int(fields[1])
        out.append(f"{kb / 1024:.1f}/{own / 1024:.1f}")
    return " ".join(out)


def cmd_first_routed(url, since, timeout=60):
    """Seconds from `since` (a time.time()) to the first 200 from url,
    asked every 5 ms; a connection refused is nginx not listening yet."""
    deadline = time.time() + float(timeout)
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    print(f"{time.time() - float(since):.3f}")
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    sys.exit(f"util.py: {url} not routed within {timeout}s")


def cmd_toggle(doc_dir, docs, url, count, step, *pids):
    docs, count, step = int(docs), int(count), int(step)
    paths = [os.path.join(doc_dir, f"svc{k}.json") for k in range(docs)]
    bodies = []
    for path in paths:
        with open(path) as f:
            bodies.append(json.load(f))
    routed_now = [False] * docs
    u = urllib.parse.urlsplit(url)

    def routed(k):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        try:
            conn.request("GET", f"/mem/s{k}/1")
            return conn.getresponse().status != 404
        finally:
            conn.close()

    start = time.time()
    for i in range(1, count + 1):
        # the documents in turn, each with a route more or less: the table
        # changes, its size does not grow
        k = i % docs
        routed_now[k] = not routed_now[k]
        if routed_now[k]:
            bodies[k]["routes"].append({"path": f"/mem/s{k}/{{id}}",
                                        "methods": ["GET"]})
        else:
            bodies[k]["routes"].pop()
        with open(paths[k] + ".tmp", "w") as f:
            json.dump(bodies[k], f, separators=(",", ":"))
        os.replace(paths[k] + ".tmp", paths[k])
        wait_until(lambda: routed(k) == routed_now[k], timeout=60,
                   message=f"change {i} routed", interval=0.02)
        if i % step == 0:
            # a quiet moment: the publication done and its buffers trimmed
            time.sleep(3)
            print(f"{i} {time.time() - start:.0f} {private_mb(pids)}",
                  flush=True)


def main(argv):
    cmds = {"port": cmd_port, "wait-status": cmd_wait_status,
            "check": cmd_check, "wrk": cmd_wrk, "report": cmd_report,
            "micro": cmd_micro, "paired": cmd_paired, "mutate": cmd_mutate,
            "propagation": cmd_propagation, "settled": cmd_settled,
            "private": cmd_private,
            "first-routed": cmd_first_routed, "toggle": cmd_toggle}
    if len(argv) < 2 or argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)

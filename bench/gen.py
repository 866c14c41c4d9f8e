#!/usr/bin/python3
"""gen.py: the benchmark's route sets, request paths and hand-written config.

    gen.py routes N DIR     DIR/routes-N.json      the route document (N routes)
                            DIR/paths-N.txt        one request path per route,
                                                   shuffled (the wrk script
                                                   walks it round-robin)
                            DIR/locations-N.conf   gateway (2): one location
                                                   per route
    gen.py churn K M DIR    DIR/churn/svcI.json    K small services of M
                                                   routes each, under prefixes
                                                   no benchmark path uses
    gen.py table N K DIR    DIR/table-N/svcI.json  the N routes of `routes N`
                                                   split over K services
                            DIR/table-N/paths.txt  their paths, shuffled

Route I of a set is one of three kinds, mixed 50/30/20 as in the issue:

    /svcK/resourceI                      literal
    /svcK/itemsI/{item_id}               one plain parameter
    /svcK/usersI/{user_id:int}/posts     a typed parameter, then a literal

with K = I // 50, so that the first segment is shared by 50 routes (a
realistic fan-out) and the second is unique.  Deterministic: the same N
always gives the same files, so rounds and runs compare.
"""

import json
import os
import random
import sys


def route(i):
    k = i // 50
    kind = i % 10
    if kind < 5:
        return f"/svc{k}/resource{i}", f"/svc{k}/resource{i}"
    if kind < 8:
        # a realistic id: hex, so only a plain {x} (str) parameter takes it
        return (f"/svc{k}/items{i}/{{item_id}}",
                f"/svc{k}/items{i}/a{(i * 7919) % 0xfffff:05x}")
    return (f"/svc{k}/users{i}/{{user_id:int}}/posts",
            f"/svc{k}/users{i}/{(i * 104729) % 1000000}/posts")


def location(template):
    """The hand-written equivalent of one route: exact or regex."""
    if "{" not in template:
        return f"location = {template} {{ proxy_pass http://backend; }}\n"
    parts = []
    for seg in template.split("/")[1:]:
        if seg.endswith(":int}"):
            parts.append("[0-9]+")
        elif seg.startswith("{"):
            parts.append("[^/]+")
        else:
            parts.append(seg)
    regex = "^/" + "/".join(parts) + "$"
    return f"location ~ {regex} {{ proxy_pass http://backend; }}\n"


def gen_routes(n, out):
    routes, paths, locs = [], [], []
    for i in range(n):
        template, path = route(i)
        routes.append({"path": template, "methods": ["GET"]})
        paths.append(path)
        locs.append(location(template))

    doc = {"status": "healthy", "service": "api", "version": "1",
           "routes": routes}
    with open(os.path.join(out, f"routes-{n}.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))

    random.Random(n).shuffle(paths)
    with open(os.path.join(out, f"paths-{n}.txt"), "w") as f:
        f.write("\n".join(paths) + "\n")

    with open(os.path.join(out, f"locations-{n}.conf"), "w") as f:
        f.writelines(locs)


def gen_churn(k, m, out):
    d = os.path.join(out, "churn")
    os.makedirs(d, exist_ok=True)
    for s in range(k):
        routes = [{"path": f"/churn{s}/r{j}/{{id}}", "methods": ["GET"]}
                  for j in range(m)]
        doc = {"status": "healthy", "service": f"churn{s}", "version": "1",
               "routes": routes}
        with open(os.path.join(d, f"svc{s}.json"), "w") as f:
            json.dump(doc, f, separators=(",", ":"))


def gen_table(n, k, out):
    d = os.path.join(out, f"table-{n}")
    os.makedirs(d, exist_ok=True)
    paths = []
    for s in range(k):
        routes = []
        for i in range(s * n // k, (s + 1) * n // k):
            template, path = route(i)
            routes.append({"path": template, "methods": ["GET"]})
            paths.append(path)
        doc = {"status": "healthy", "service": f"t{s}", "version": "1",
               "routes": routes}
        with open(os.path.join(d, f"svc{s}.json"), "w") as f:
            json.dump(doc, f, separators=(",", ":"))
    random.Random(n).shuffle(paths)
    with open(os.path.join(d, "paths.txt"), "w") as f:
        f.write("\n".join(paths) + "\n")


def main(argv):
    if len(argv) == 4 and argv[1] == "routes":
        gen_routes(int(argv[2]), argv[3])
    elif len(argv) == 5 and argv[1] == "churn":
        gen_churn(int(argv[2]), int(argv[3]), argv[4])
    elif len(argv) == 5 and argv[1] == "table":
        gen_table(int(argv[2]), int(argv[3]), argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

"""What nginx and Starlette each make of an attacker's request paths.

    make module && PYTHONPATH=python /usr/bin/python3 t/e2e/path_survey.py

Starts the probe service (t/e2e/probe_service.py) and nginx with the built
module, two servers proxying to the probe with `proxy_pass http://$backend;`
(the raw request line forwarded, as with $discovery_upstream), one with
merge_slashes on (the default) and one with it off.  Sends every path of
SURVEY on a raw socket and prints a markdown table: nginx's $uri (or its own
answer), the route the module decides for it ($discovery_route), and what
uvicorn and Starlette made of the forwarded request: scope["path"] and the
route that ran.  When nginx refuses a path, the Starlette columns show the
same request sent straight to uvicorn.  Not a test: the evidence behind
test_canonical.py and the README's Routing section.
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import NGINX_PREAMBLE, START_TIMEOUT, Gateway, Service, free_port, raw_request  # noqa: E402

SURVEY = [
    "/a/b", "/a/./b", "/a/../b", "/../b", "/a/../../b",
    "/a/%2e%2e/b", "/a/%2E%2E/b", "/a/.%2e/b", "/a/%2e./b", "/a/%2e/b",
    "/a/..%2fb", "/a/%2f../b", "/a%2f..%2fb", "/a/..%2Fb", "/a/%2e%2e%2fb",
    "/a/..", "/a/.", "/a/%2e%2e", "/a/",
    "//a//b", "/a//b", "/a/%2F/b", "/a%2F%2Fb", "/a/b%2Fc", "/a%2Fb",
    "/a/%5C../b", "/a/..%5Cb", "/a/%5c", "/a/\\..\\b", "/a\\..\\b",
    "/a/%c0%ae%c0%ae/b", "/a/%e0%80%ae/b", "/a/%c0%af",
    "/a/%31", "/a/%C3%A9", "/a/\xc3\xa9", "/a/%00", "/a/%zz", "/a/%2",
    "/a/b?x=/../c", "/a/b%3Fx", "/a/b%3F/../c", "/a/b#frag", "/a/b#/../c", "/a#/b",
    "/a/%23/b", "/a/b%20c", "/a/b;x", "/a/..;/b",
    "http://127.0.0.1/a/../b", "http://127.0.0.1//a//b", "*",
    "/a/..//evil.example", "/static/%2e%2e/users/abc", "//users//1", "/chat/../users/1",
    "/files/a%2Fb", "/admin/x/../../static/y", "/users/abc#/avatar",
    "/static/../users/abc", "/static/..%2fadmin%2fpanel", "/users/%31/avatar", "/users/1/avatar/.",
    "/a/b/..", "/.%2e/b", "/a/b/.%00", '/a/../"x\\', "/a/%2e%2e/%ff", "/a/../\xff",
]

CONF = NGINX_PREAMBLE + """\
    discovery_zone     1m;
    discovery_service  probe  http://127.0.0.1:{probe} interval=1s timeout=2s;

    server {{
        listen  127.0.0.1:{gateway};
        {location}
    }}

    server {{
        listen         127.0.0.1:{merge_off};
        merge_slashes  off;
        {location}
    }}
}}
"""

LOCATION = """
        location / {{
            set  $backend  127.0.0.1:{probe};
            proxy_pass        http://$backend;
            proxy_set_header  X-Discovery-Route $discovery_route;
            add_header  X-Uri $uri always;
            add_header  X-Discovery-Route $discovery_route always;
        }}

        location = /_discovery {{
            discovery_status;
        }}
"""


def show(text):
    """text with non-printable and non-ASCII characters escaped, fit for a table cell."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    out = []
    for ch in text:
        if ch == "|":
            out.append("\\|")
        elif " " < ch < "\x7f":
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "`" + "".join(out) + "`" if out else "(empty)"


def nginx_view(port, path):
    """nginx's $uri, or its own answer when it refuses the request."""
    response = raw_request(port, path)
    uri = response.headers.get("x-uri")
    if uri is None:
        return f"**{response.status_code}** (nginx)", None, None
    route = response.headers.get("x-discovery-route") or "-"
    try:
        probe = response.json()
    except ValueError:
        probe = {"status": response.status_code, "body": response.content[:60]}
    return show(uri.encode("latin-1")), route, probe


def starlette_view(probe):
    if "route" not in probe:
        return f"**{probe['status']}** (uvicorn)", "-", "-"
    forwarded = show(probe["raw_path"] + ("?" + probe["query_string"] if probe["query_string"] else ""))
    if probe.get("direct"):
        forwarded = "(sent directly) " + forwarded
    return show(probe["path"]), probe["route"] or "404", forwarded


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        probe = Service("probe", tmp, script=Path(__file__).resolve().parent / "probe_service.py")
        merge_off = free_port()
        nginx = Gateway(tmp, [probe], template=CONF, merge_off=merge_off,
                        location=LOCATION.format(probe=probe.port))
        try:
            probe.start()
            nginx.start()
            nginx.wait_for_states({"probe": "healthy"}, timeout=START_TIMEOUT)

            print("| request target | nginx $uri | $discovery_route | $uri, merge_slashes off"
                  " | $discovery_route, off | forwarded (raw_path?query) | Starlette path"
                  " | Starlette route |")
            print("|---|---|---|---|---|---|---|---|")
            for path in SURVEY:
                uri_on, route, probe_seen = nginx_view(nginx.port, path)
                uri_off, route_off, _ = nginx_view(merge_off, path)
                if probe_seen is None:  # nginx refused: what uvicorn alone does with it
                    direct = raw_request(probe.port, path)
                    try:
                        probe_seen = direct.json()
                        probe_seen["direct"] = True
                    except ValueError:
                        probe_seen = {"status": direct.status_code}
                path_seen, route_seen, forwarded = starlette_view(probe_seen)
                print(f"| {show(path)} | {uri_on} | {route or '-'} | {uri_off} | {route_off or '-'}"
                      f" | {forwarded} | {path_seen} | {route_seen} |")
        finally:
            nginx.stop()
            probe.stop()


if __name__ == "__main__":
    main()

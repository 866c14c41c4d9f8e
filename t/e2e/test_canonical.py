"""The gateway routes the path the service runs: non-canonical paths.

nginx routes on its normalized $uri, but `proxy_pass http://$discovery_upstream;`
forwards the raw request line, which uvicorn percent-decodes and Starlette
matches without removing dot segments or merging slashes.  Whenever the two
differ, the gateway has decided (and logged, and computed
$discovery_route_auth for) a route the service does not run.

The probe service (probe_service.py) answers every request with the route it
ran and the X-Discovery-Route the gateway sent with it.  For every target of
CASES, and nginx with merge_slashes on and off, either the gateway refuses
the request itself, or the service runs the route the gateway decided, or
both find no route.  `discovery_noncanonical` (default reject) is what makes
that hold: reject answers 400, redirect answers 308 to the canonical path,
pass routes as before and is unsafe for the cases whose `today` differs.

Requests go out on raw sockets (support.raw_request): httpx removes dot
segments and re-encodes the path before sending it.
"""

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import pytest

from support import NGINX_PREAMBLE, START_TIMEOUT, Gateway, Service, free_port, raw_request

PROBE = Path(__file__).resolve().parent / "probe_service.py"

CONF = NGINX_PREAMBLE + """\
    discovery_zone     1m;
    discovery_service  probe  http://127.0.0.1:{probe} interval=1s timeout=2s;
    {http_directive}

    server {{
        listen  127.0.0.1:{gateway};
        {server_directive}
{locations}
    }}

    server {{
        listen         127.0.0.1:{merge_off};
        merge_slashes  off;
        {server_directive}
{locations}
    }}
}}
"""

LOCATIONS = """\
        location / {{
            discovery_route  on;
            {location_directive}

            proxy_pass        http://$discovery_upstream;
            proxy_set_header  X-Discovery-Route $discovery_route;
            proxy_set_header  X-Gateway-Uri $uri;
            add_header        X-Discovery-Route $discovery_route always;
        }}

        # the URI is changed before routing: proxy_pass sends nginx's own
        # normalized URI, not the raw request line, and nothing is checked
        location /rewritten/ {{
            rewrite  ^/rewritten(/.*)$ $1 break;

            discovery_route   on;
            proxy_pass        http://$discovery_upstream;
            proxy_set_header  X-Discovery-Route $discovery_route;
            proxy_set_header  X-Gateway-Uri $uri;
        }}

        location = /_discovery {{
            discovery_status;
        }}
"""

# each gateway's discovery_noncanonical, set in all three contexts in turn,
# the inner one overriding another mode in http
MODES = {
    "reject": {},  # the default: the directive is absent
    "redirect": {"http_directive": "discovery_noncanonical  pass;",
                 "server_directive": "discovery_noncanonical  redirect;"},
    "pass": {"http_directive": "discovery_noncanonical  redirect;",
             "location_directive": "discovery_noncanonical  pass;"},
}
SERVERS = ("merge_on", "merge_off")

REJECTED = "Path is not canonical"
GATEWAY_404 = 404  # the gateway's decision when it answers 404 itself
ANY = object()  # more than one canonical form is right (see the case)


@dataclass(frozen=True)
class Case:
    target: str  # the request target, sent as latin-1 bytes
    kind: str  # "canonical", "noncanonical" or "nginx" (nginx itself answers 400)
    canonical: object = None  # noncanonical: the canonical path, decoded, or ANY
    today: Optional[Tuple] = None  # noncanonical: (gateway's decision, service's route) under pass

    @property
    def raw_path(self):
        """The path as sent, before '?', without an absolute-form's scheme and host."""
        target = self.target
        if target.startswith("http://"):
            target = target[target.index("/", len("http://")):]
        return target.partition("?")[0]

    @property
    def query(self):
        """'?' and the query string as sent, or '' without one."""
        path, mark, query = self.target.partition("?")
        return mark + query


def canonical(target):
    return Case(target, "canonical")


def noncanonical(target, canonical_path, gateway, service):
    return Case(target, "noncanonical", canonical_path, (gateway, service))


def refused_by_nginx(target):
    return Case(target, "nginx")


CASES = [
    # the attacks of the issue, on the probe's routes
    noncanonical("/static/%2e%2e/users/abc", "/users/abc", "/users/{name}", "/static/{rest:path}"),
    noncanonical("/static/../users/abc", "/users/abc", "/users/{name}", "/static/{rest:path}"),
    noncanonical("/static/..%2fadmin%2fpanel", "/admin/panel",
                 "/admin/{rest:path}", "/static/{rest:path}"),
    # the gateway sees an unauthenticated route, the service runs an authenticated one
    noncanonical("/admin/x/../../static/y", "/static/y", "/static/{rest:path}", "/admin/{rest:path}"),
    noncanonical("/chat/../users/1", "/users/1", "/users/{name}", None),
    noncanonical("//users//1", "/users/1", "/users/{name}", None),
    noncanonical("/static/%2e%2e/users/abc?next=/../x&y=%2e%2e", "/users/abc",
                 "/users/{name}", "/static/{rest:path}"),
    canonical("/users/abc"),
    canonical("/users/%31/avatar"),
    canonical("/users/%C3%A9"),
    canonical("/static/css/app.css"),
    canonical("/admin/panel"),
    # an encoded slash is a separator for nginx and for uvicorn alike
    canonical("/files/a%2Fb"),
    canonical("/files/a%2fb"),

    # dot segments, literal and percent-encoded, any case
    noncanonical("/a/./b", "/a/b", "/a/b", "/a/{rest:path}"),
    noncanonical("/a/../b", "/b", "/b", "/a/{rest:path}"),
    noncanonical("/a/%2e%2e/b", "/b", "/b", "/a/{rest:path}"),
    noncanonical("/a/%2E%2E/b", "/b", "/b", "/a/{rest:path}"),
    noncanonical("/a/%2e%2E/b", "/b", "/b", "/a/{rest:path}"),
    noncanonical("/a/.%2e/b", "/b", "/b", "/a/{rest:path}"),
    noncanonical("/a/%2e./b", "/b", "/b", "/a/{rest:path}"),
    noncanonical("/a/%2e/b", "/a/b", "/a/b", "/a/{rest:path}"),
    # with encoded slashes around them
    noncanonical("/a/..%2fb", "/b", "/b", "/a/{rest:path}"),
    noncanonical("/a/..%2Fb", "/b", "/b", "/a/{rest:path}"),
    noncanonical("/a%2f..%2fb", "/b", "/b", "/a/{rest:path}"),
    noncanonical("/a/%2e%2e%2fb", "/b", "/b", "/a/{rest:path}"),
    # "/a//../b": "/b" when slashes are merged first (nginx, merge_slashes on),
    # "/a/b" when the empty segment is removed by ".." (RFC 3986, merge_slashes off)
    noncanonical("/a/%2f../b", ANY, "/b", "/a/{rest:path}"),
    # trailing dot segments
    noncanonical("/a/..", "/", GATEWAY_404, "/a/{segment}"),
    noncanonical("/a/%2e%2e", "/", GATEWAY_404, "/a/{segment}"),
    noncanonical("/a/.", "/a/", "/a/{rest:path}", "/a/{segment}"),
    # same template, not the same path: rest is "" for one, "b/.." for the other
    noncanonical("/a/b/..", "/a/", "/a/{rest:path}", "/a/{rest:path}"),
    # the gateway routes "/users/1/avatar/" by its trailing-slash rule
    noncanonical("/users/1/avatar/.", "/users/1/avatar/", "/users/{user_id:int}/avatar", None),
    # a dot segment after a decoded "?"
    noncanonical("/a/b%3F/../c", "/a/c", "/a/{segment}", "/a/{rest:path}"),
    # a dot segment above the root: nginx answers 400 itself
    refused_by_nginx("/../b"),
    refused_by_nginx("/a/../../b"),
    refused_by_nginx("/.%2e/b"),

    # repeated slashes, literal and encoded
    noncanonical("//a//b", "/a/b", "/a/b", None),
    noncanonical("/a//b", "/a/b", "/a/b", "/a/{rest:path}"),
    noncanonical("/a/%2F/b", "/a/b", "/a/b", "/a/{rest:path}"),
    noncanonical("/a%2F%2Fb", "/a/b", "/a/b", "/a/{rest:path}"),
    # the canonical path must not become a protocol-relative Location
    noncanonical("/a/..//evil.example", "/evil.example", GATEWAY_404, "/a/{rest:path}"),
    canonical("/a/b%2Fc"),
    canonical("/a%2Fb"),

    # backslashes are ordinary characters for both (nginx on Windows aside)
    canonical("/a/%5C../b"),
    canonical("/a/..%5Cb"),
    canonical("/a/%5c"),
    canonical("/a/\\..\\b"),
    canonical("/a\\..\\b"),

    # overlong UTF-8 for "." and "/": bytes to nginx, U+FFFD to Starlette, never a dot
    canonical("/a/%c0%ae%c0%ae/b"),
    canonical("/a/%e0%80%ae/b"),
    canonical("/a/%c0%af"),
    # escapes that decode to the same segments
    canonical("/a/%31"),
    canonical("/a/%C3%A9"),
    canonical("/a/b%20c"),
    canonical("/a/%23/b"),
    canonical("/a/b%3Fx"),
    # dots that are not whole segments
    canonical("/a/.b"),
    canonical("/a/..b"),
    canonical("/a/b."),
    canonical("/a/..;/b"),
    canonical("/a/b;x"),
    canonical("/a/"),
    # the query string is not the path
    canonical("/a/b?x=/../c"),

    # bytes nginx refuses to decode
    refused_by_nginx("/a/%00"),
    refused_by_nginx("/a/b/.%00"),
    refused_by_nginx("/a/%zz"),
    refused_by_nginx("/a/%2"),
    refused_by_nginx("*"),

    # a fragment on the request line (clients strip it; a raw request does
    # not, and RFC 9112 has no '#' in a request target): nginx's $uri ends
    # before '#', the forwarded path and Starlette's do not.  Beyond dot
    # segments and slashes, and as unsafe: refused like them, canonical path
    # the part before '#'.
    noncanonical("/a/b#frag", "/a/b", "/a/b", "/a/{segment}"),
    noncanonical("/a/b#/../c", "/a/b", "/a/b", "/a/{rest:path}"),
    noncanonical("/users/abc#/avatar", "/users/abc", "/users/{name}", None),
    noncanonical("/a#/b", "/a", "/a/{rest:path}", None),

    # absolute form: nginx forwards the path alone
    noncanonical("http://127.0.0.1/a/../b", "/b", "/b", "/a/{rest:path}"),
    noncanonical("http://127.0.0.1//a//b", "/a/b", "/a/b", None),

    # the rejection's JSON holds whatever the path holds
    noncanonical('/a/../"x\\', '/"x\\', GATEWAY_404, "/a/{rest:path}"),
    noncanonical("/a/%2e%2e/%ff", "/\xff", GATEWAY_404, "/a/{rest:path}"),
    # a raw byte that is not UTF-8: uvicorn refuses it, the JSON holds U+FFFD
    noncanonical("/a/../\xff", "/\xff", GATEWAY_404, None),
]


def case_id(case):
    """The target, readable: printable ASCII as is, other bytes as \\xNN."""
    return "".join(ch if " " < ch < "\x7f" else f"\\x{ord(ch):02x}" for ch in case.target)


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    service = Service("probe", tmp_path_factory.mktemp("probe"), script=PROBE)
    try:
        service.start()
        yield service
    finally:
        service.stop()


def running_gateway(mode, probe, directory):
    """Start the gateway of mode, yield it once the probe is healthy, stop it."""
    settings = dict(http_directive="", server_directive="", location_directive="")
    settings.update(MODES[mode])
    merge_off = free_port()
    nginx = Gateway(directory, [probe], template=CONF, merge_off=merge_off,
                    locations=LOCATIONS.format(**settings), **settings)
    nginx.ports = {"merge_on": nginx.port, "merge_off": merge_off}
    try:
        nginx.start()
        try:
            nginx.wait_for_states({"probe": "healthy"}, timeout=START_TIMEOUT)
        except RuntimeError as error:  # nginx exited: the error names the log's tail
            raise AssertionError(f"{mode} gateway: {error}") from None
        except AssertionError as error:
            raise AssertionError(f"{mode} gateway: {error}\nnginx error.log:\n"
                                 f"{nginx.error_log_tail()}") from None
        yield nginx
    finally:
        nginx.stop()


@pytest.fixture(scope="module")
def reject_gateway(probe, tmp_path_factory):
    yield from running_gateway("reject", probe, tmp_path_factory.mktemp("nginx-reject"))


@pytest.fixture(scope="module")
def redirect_gateway(probe, tmp_path_factory):
    yield from running_gateway("redirect", probe, tmp_path_factory.mktemp("nginx-redirect"))


@pytest.fixture(scope="module")
def pass_gateway(probe, tmp_path_factory):
    yield from running_gateway("pass", probe, tmp_path_factory.mktemp("nginx-pass"))


@dataclass(repr=False)
class Outcome:
    """What became of one request: who answered, and the two decisions."""
    response: object
    body: object  # the answer's JSON; None when it has none, or none that parses
    answered_by: str  # "service", "gateway" (a JSON answer) or "nginx" (its own page)
    gateway_route: Optional[str] = None  # the route the gateway decided, when it forwarded
    service_route: Optional[str] = None  # the route the service ran (asked directly after a gateway 404)
    service_saw: Optional[dict] = None  # the probe's answer
    redirect_to: Optional[str] = None  # the path of the service's own 307
    target_path: Optional[str] = None  # the request's, for that 307

    def gateway_path(self):
        """The path the gateway routed ($uri), as Starlette would decode its bytes."""
        uri = self.service_saw.get("gateway_uri")
        return None if uri is None else uri.encode("latin-1").decode("utf-8", "replace")

    def agrees(self):
        """The gateway refused the request, or the service ran the route the
        gateway decided on the path the gateway routed, or neither has a route
        for it.  The same template on another path is not agreement: for
        /a/b/.. {rest:path} is "" at the gateway and "b/.." at the service."""
        status = self.response.status_code
        if self.answered_by == "redirect":
            # Starlette's redirect_slashes: the gateway routed a path nothing
            # has to the route with its trailing slash toggled, and the
            # service redirected there; it runs that very route
            toggled = (self.target_path[:-1] if self.target_path.endswith("/")
                       else self.target_path + "/")
            return (self.redirect_to == toggled and self.service_route is not None
                    and self.service_route == self.gateway_route)
        if self.answered_by == "service":
            return (self.service_route is not None and self.service_route == self.gateway_route
                    and self.service_saw["path"] == self.gateway_path())
        if status == 400 and self.answered_by == "nginx":
            return True  # refused on the request line, before any module ran
        if status == 400:
            return isinstance(self.body, dict) and self.body.get("detail") == REJECTED
        if status == 404 and self.answered_by == "gateway":
            return self.service_route is None
        return False

    def decisions(self):
        """(the gateway's decision, the service's route), as CASES write today's."""
        if self.answered_by == "service":
            return self.gateway_route, self.service_route
        if self.answered_by == "gateway" and self.response.status_code == 404:
            return GATEWAY_404, self.service_route
        return self.response.status_code, None

    def __str__(self):
        r = self.response
        if self.answered_by == "service":
            said = (f"gateway routed {self.gateway_path()!r} as {self.gateway_route!r}, "
                    f"service ran {self.service_saw['path']!r} as {self.service_route!r}")
        else:
            said = f"the {self.answered_by} answered {r.status_code} itself"
            if self.answered_by == "gateway" and self.body is None:
                said += " (its body is not valid JSON)"
            if self.service_saw is not None:
                said += f", service (asked directly) would run {self.service_route!r}"
        return (f"{said}; service saw {self.service_saw}; status {r.status_code}, "
                f"headers {dict(r.headers)}, body {r.content[:300]!r}")

    def __repr__(self):
        return f"<{self.response.status_code} from the {self.answered_by}>"


def is_json(response):
    return response.headers.get("content-type", "").startswith("application/json")


def json_or_none(response):
    """The answer's JSON; None when it is not JSON or does not parse (json.loads
    is strict: invalid UTF-8 or an unescaped quote fails)."""
    if not is_json(response):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def probe_answer(body):
    """The probe's answer, or None when body is not one."""
    return body if isinstance(body, dict) and "raw_path" in body else None


def observe(port, target, probe):
    """Send target to the gateway on port; when the gateway answers 404 itself,
    ask the service directly which route it would have run."""
    response = raw_request(port, target)
    body = json_or_none(response)
    seen = probe_answer(body)
    if seen is not None:
        return Outcome(response, body, "service", seen["gateway_route"], seen["route"], seen)
    if response.status_code == 307 and "x-discovery-route" in response.headers:
        # the service's own redirect: which route does it run there?
        location = urllib.parse.urlsplit(response.headers["location"]).path
        seen = probe_answer(json_or_none(raw_request(probe.port, location)))
        return Outcome(response, body, "redirect", response.headers["x-discovery-route"],
                       seen["route"] if seen else None, seen, location,
                       urllib.parse.urlsplit(target).path)
    outcome = Outcome(response, body, "gateway" if is_json(response) else "nginx")
    if outcome.answered_by == "gateway" and response.status_code == 404:
        direct = raw_request(probe.port, target)
        seen = probe_answer(json_or_none(direct))
        # uvicorn refusing the request line (400, not the probe's JSON) runs no route either
        outcome.service_saw = seen or {"status": direct.status_code, "body": direct.content[:100]}
        outcome.service_route = seen["route"] if seen else None
    return outcome


def assert_refused_by_nginx(outcome):
    """nginx's own 400 page: it refused the request line before any module ran."""
    response = outcome.response
    assert response.status_code == 400, str(outcome)
    assert outcome.answered_by == "nginx", str(outcome)
    assert response.headers.get("content-type", "").startswith("text/html"), str(outcome)


def assert_rejected(outcome, case):
    response = outcome.response
    assert response.status_code == 400, str(outcome)
    assert is_json(response), str(outcome)
    # invalid UTF-8 in the path is the module's usual U+FFFD, one per ill-formed sequence
    expected_path = case.raw_path.encode("latin-1").decode("utf-8", "replace")
    assert outcome.body == {"detail": REJECTED, "path": expected_path}, str(outcome)


def dot_segments_or_empty(path):
    """The segments of a decoded path that make it non-canonical."""
    segments = path.split(b"/")[1:]
    return [s for i, s in enumerate(segments)
            if s in (b".", b"..") or (s == b"" and i < len(segments) - 1)]


SERVER_CASES = [pytest.param(server, case, id=f"{server}-{case_id(case)}")
                for server in SERVERS for case in CASES]
NONCANONICAL = [p for p in SERVER_CASES if p.values[1].kind == "noncanonical"]
NOT_NONCANONICAL = [p for p in SERVER_CASES if p.values[1].kind != "noncanonical"]


@pytest.mark.parametrize("server, case", SERVER_CASES)
def test_gateway_and_service_agree(reject_gateway, probe, server, case):
    """The core property, under the default (reject): for every target the
    gateway refuses it, or the service runs the route the gateway decided, or
    neither has a route."""
    outcome = observe(reject_gateway.ports[server], case.target, probe)
    assert outcome.agrees(), str(outcome)


@pytest.mark.parametrize("server, case", SERVER_CASES)
def test_reject_answers_400_for_noncanonical_only(reject_gateway, probe, server, case):
    outcome = observe(reject_gateway.ports[server], case.target, probe)
    if case.kind == "nginx":
        assert_refused_by_nginx(outcome)
    elif case.kind == "noncanonical":
        assert_rejected(outcome, case)
    else:
        # canonical, and so not refused: routed, or the gateway's own 404
        assert outcome.response.status_code != 400, str(outcome)
        assert outcome.agrees(), str(outcome)


@pytest.mark.parametrize("server, case", NONCANONICAL)
def test_redirect_leads_to_an_agreeing_decision(redirect_gateway, probe, server, case):
    port = redirect_gateway.ports[server]
    outcome = observe(port, case.target, probe)
    response = outcome.response
    assert response.status_code == 308, str(outcome)
    location = response.headers.get("location")
    assert location is not None, str(outcome)
    # printable ASCII, on this host (nginx makes it absolute, as for its
    # own redirects, unless absolute_redirect is off), a path that does not
    # start with "//" (which a browser reads as another host)
    assert all("!" <= ch <= "~" for ch in location), f"Location {location!r} is not printable ASCII"
    origin = f"http://127.0.0.1:{port}"
    assert location.startswith(origin + "/"), f"Location {location!r} is not on {origin}"
    location = location[len(origin):]
    assert not location.startswith("//"), f"Location {location!r} is not a path on this host"
    path, mark, query = location.partition("?")
    assert mark + query == case.query, f"Location {location!r} does not keep the query {case.query!r}"
    decoded = urllib.parse.unquote_to_bytes(path)
    assert dot_segments_or_empty(decoded) == [], f"Location {location!r} is not canonical"
    if case.canonical is not ANY:
        assert decoded == case.canonical.encode("latin-1"), \
            f"Location {location!r} is not {case.canonical!r}"

    followed = observe(port, location, probe)
    assert followed.response.status_code not in (308, 400), str(followed)
    assert followed.agrees(), str(followed)
    if followed.answered_by == "service":
        assert followed.service_saw["query_string"] == query, str(followed)


@pytest.mark.parametrize("server, case", NOT_NONCANONICAL)
def test_redirect_leaves_canonical_paths_alone(redirect_gateway, probe, server, case):
    outcome = observe(redirect_gateway.ports[server], case.target, probe)
    if case.kind == "nginx":
        assert_refused_by_nginx(outcome)
    else:
        assert outcome.response.status_code not in (308, 400), str(outcome)
        assert outcome.agrees(), str(outcome)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_pass_routes_as_today(pass_gateway, probe, case):
    """pass: the decisions of the module before discovery_noncanonical, with
    merge_slashes on.  Where today's pair differs, pass is unsafe."""
    outcome = observe(pass_gateway.ports["merge_on"], case.target, probe)
    if case.kind == "nginx":
        assert_refused_by_nginx(outcome)
    elif case.kind == "canonical":
        assert outcome.response.status_code != 400, str(outcome)
        assert outcome.agrees(), str(outcome)
    else:
        assert outcome.decisions() == case.today, str(outcome)


@pytest.mark.parametrize("mode", ["reject", "redirect"])
def test_rewritten_uri_is_not_checked(request, probe, mode):
    """After a rewrite proxy_pass sends nginx's normalized URI: nothing to disagree on."""
    gateway = request.getfixturevalue(f"{mode}_gateway")
    outcome = observe(gateway.port, "/rewritten/static/%2e%2e/users/abc", probe)
    assert outcome.response.status_code == 200, str(outcome)
    assert outcome.service_saw["raw_path"] == "/users/abc", str(outcome)
    assert outcome.agrees() and outcome.service_route == "/users/{name}", str(outcome)


def test_encoded_slash_is_a_separator_for_starlette(probe):
    """uvicorn percent-decodes the whole path, %2F included, before Starlette
    routes it: /files/a%2Fb is /files/a/b, two segments, as for nginx."""
    seen = raw_request(probe.port, "/files/a%2Fb").json()
    assert (seen["route"], seen["path"], seen["raw_path"]) == (None, "/files/a/b", "/files/a%2Fb")
    seen = raw_request(probe.port, "/a/b%2Fc").json()
    assert (seen["route"], seen["path"]) == ("/a/{rest:path}", "/a/b/c")


def test_raw_non_ascii_runs_no_route(reject_gateway, probe):
    """nginx takes raw UTF-8 on the request line and routes it; uvicorn (h11)
    refuses it with 400 before any route runs."""
    response = raw_request(reject_gateway.port, "/users/\xc3\xa9")
    assert response.status_code == 400, (response.headers, response.content)
    assert probe_answer(json_or_none(response)) is None
    assert response.headers.get("x-discovery-route") == "/users/{name}"


def test_probe_publishes_its_authenticated_route(reject_gateway):
    """The cases that climb into /admin/ are about a route the gateway knows
    as authenticated: the probe must publish it so."""
    [probe_status] = reject_gateway.status()["services"]
    auth = {route["path"]: route["auth_required"] for route in probe_status["routes"]}
    assert auth["/admin/{rest:path}"] is True
    assert auth["/static/{rest:path}"] is False

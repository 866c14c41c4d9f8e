"""discovery_metrics scraped by a real Prometheus (Debian's), every second,
from a gateway of two example services: each counter, read back with PromQL
through Prometheus's HTTP API, is exactly what was sent.  And promtool
checks the exposition at 0 and 10,000 routes.
"""

import json
import shutil
import subprocess

import httpx
import pytest

from support import NGINX_PREAMBLE, PYTHON, Gateway, Service, free_port, stop_process, wait_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

METRICS_CONF = NGINX_PREAMBLE + """\
    discovery_zone  16m;

    discovery_service  users    http://127.0.0.1:{users} interval=1s timeout=1s fails=1;
    discovery_service  billing  http://127.0.0.1:{billing} uri=/openapi.json interval=1s timeout=1s fails=1;

    server {{
        listen  127.0.0.1:{gateway};

        location / {{
            discovery_route  on;
            proxy_pass       http://$discovery_upstream;
        }}

        location = /_discovery {{
            discovery_status;
        }}

        location = /metrics {{
            discovery_metrics;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """(gateway, services, prometheus URL): users and billing behind a
    gateway with discovery_metrics, and Prometheus scraping it every second."""
    for tool in (PROMETHEUS, PROMTOOL):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: `make deps` installs Debian's prometheus")
    directory = tmp_path_factory.mktemp("metrics")
    services = {name: Service(name, directory) for name in ("users", "billing")}
    nginx = Gateway(directory, services.values(), template=METRICS_CONF, workers=2)
    prometheus = None
    try:
        for service in services.values():
            service.launch()
        for service in services.values():
            service.wait_ready()
        nginx.start_healthy({"users": "healthy", "billing": "healthy"})

        port = free_port()
        config = directory / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: gateway\n    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{nginx.port}']\n")
        with open(directory / "prometheus.log", "ab") as log:
            prometheus = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}",
                 f"--storage.tsdb.path={directory / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"

        def ready():
            try:
                return httpx.get(url + "/-/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout=15, message="Prometheus ready")
        yield nginx, services, url
    finally:
        stop_process(prometheus)
        nginx.stop()
        for service in services.values():
            service.stop()


def query(url, promql):
    """The value of an instant PromQL query with one result, or None."""
    answer = httpx.get(url + "/api/v1/query", params={"query": promql}, timeout=3).json()
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def test_prometheus_reads_exactly_what_was_sent(stack):
    nginx, services, url = stack

    # Prometheus scrapes the gateway, in OpenMetrics (its Accept asks first)
    wait_until(lambda: query(url, 'up{job="gateway"}'), lambda v: v == 1, 10,
               message="the gateway's target up")
    formats = httpx.get(url + "/api/v1/targets", timeout=3).json()["data"]["activeTargets"]
    assert formats[0]["lastError"] == "", formats

    sent = {}
    with httpx.Client(base_url=nginx.url, timeout=5) as http:
        def send(method, path, want, **kw):
            response = http.request(method, path, **kw)
            assert response.status_code == want, (method, path, response.text)
            sent[(method, path, want)] = sent.get((method, path, want), 0) + 1

        for _ in range(10):
            send("GET", "/users", 200)
        for i in range(3):
            send("POST", "/users", 201, json={"name": f"n{i}", "email": f"n{i}@example.com"})
        for _ in range(4):
            send("GET", "/nope", 404)
        for _ in range(2):
            send("DELETE", "/billing/invoices", 405)
        for _ in range(6):
            send("GET", "/billing/invoices", 200)

        # billing stops: its polls fail, it is down, its routes answer 503
        services["billing"].stop()
        nginx.wait_for_states({"users": "healthy", "billing": "unhealthy"}, timeout=10)
        for _ in range(5):
            send("GET", "/billing/invoices", 503)

    want = {
        'nginx_discovery_requests_total{service="users",route="/users",method="GET",code="2xx"}': 10,
        'nginx_discovery_requests_total{service="users",route="/users",method="POST",code="2xx"}': 3,
        'nginx_discovery_requests_total{service="billing",route="/billing/invoices",method="GET",code="2xx"}': 6,
        'sum(nginx_discovery_requests_total)': 19,
        'nginx_discovery_request_duration_seconds_count{service="users",route="/users"}': 13,
        'nginx_discovery_gateway_responses_total{reason="not_found"}': 4,
        'nginx_discovery_gateway_responses_total{reason="method_not_allowed"}': 2,
        'nginx_discovery_gateway_responses_total{reason="unavailable"}': 5,
        'nginx_discovery_gateway_responses_total{reason="pending"}': 0,
        'sum(nginx_discovery_metrics_overflow_total)': 0,
        'nginx_discovery_service_up{service="billing"}': 0,
        'nginx_discovery_service_up{service="users"}': 1,
        'nginx_discovery_service_state{service="billing",state="unhealthy"}': 1,
    }
    for promql, value in want.items():
        wait_until(lambda: query(url, promql), lambda v: v == value, 8,
                   message=f"{promql} == {value}")

    # the failed polls are there, and none of users'
    assert query(url, 'nginx_discovery_polls_total{service="billing",result="failure"}') >= 1
    assert query(url, 'nginx_discovery_polls_total{service="users",result="failure"}') == 0
    assert query(url, 'nginx_discovery_polls_total{service="users",result="success"}') >= 1

    # a later scrape changes none of them: they were exact, not on their way up
    scraped = query(url, 'timestamp(up{job="gateway"})')
    wait_until(lambda: query(url, 'timestamp(up{job="gateway"})'),
               lambda t: t >= scraped + 2, 5, message="two more scrapes")
    for promql, value in want.items():
        assert query(url, promql) == value, promql

    # an alert expression of the README: the service down
    assert query(url, 'max by (service) (nginx_discovery_service_up == 0)') == 0


BIG_CONF = NGINX_PREAMBLE + """\
    discovery_zone  32m;
    {service}

    server {{
        listen  127.0.0.1:{backend};
        default_type  application/json;
        location = /health {{
            alias  {document};
        }}
        location / {{
            return  200 "ok\\n";
        }}
    }}

    server {{
        listen  127.0.0.1:{gateway};

        location / {{
            discovery_route  on;
            proxy_pass       http://$discovery_upstream;
        }}

        location = /_discovery {{
            discovery_status;
        }}

        location = /metrics {{
            discovery_metrics;
        }}
    }}
}}
"""


@pytest.mark.parametrize("routes", [0, 10000])
def test_promtool_checks_the_exposition(tmp_path, routes):
    """promtool check metrics: the text format, at 0 and 10,000 routes (some
    of them with requests); the OpenMetrics one by prometheus_client's
    parser, which promtool does not read."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    document = tmp_path / "routes.json"
    document.write_text(json.dumps({"routes": [
        {"path": f"/r{i // 100}/x{i}/{{id}}", "methods": ["GET", "POST"]}
        for i in range(routes)]}))
    backend = free_port()
    service = f"discovery_service big http://127.0.0.1:{backend} uri=/health interval=1s;"
    nginx = Gateway(tmp_path, [], template=BIG_CONF, backend=backend, document=document,
                    service=service)
    try:
        nginx.start()

        def scrape(accept=None):
            headers = {"Accept": accept} if accept else {}
            try:
                return httpx.get(nginx.url + "/metrics", headers=headers, timeout=3)
            except httpx.TransportError:
                return None

        wait_until(scrape, lambda r: r is not None and r.status_code == 200
                   and 'nginx_discovery_service_up{service="big"} 1\n' in r.text
                   and f"nginx_discovery_table_routes {routes}\n" in r.text, 10,
                   message=f"{routes} routes in the table")
        for i in range(0, routes, 97):
            assert httpx.get(f"{nginx.url}/r{i // 100}/x{i}/7", timeout=3).status_code == 200
            httpx.post(f"{nginx.url}/r{i // 100}/x{i}/7", timeout=3)
        httpx.get(nginx.url + "/nope", timeout=3)

        text = scrape()
        assert text.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=text.content,
                               capture_output=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        if routes:
            assert text.text.count("nginx_discovery_requests_total{") == 2 * len(range(0, routes, 97))

        om = scrape("application/openmetrics-text; version=1.0.0")
        assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
        assert om.text.endswith("# EOF\n")
        families = {f.name: f for f in text_string_to_metric_families(om.text)}
        assert families["nginx_discovery_requests"].type == "counter"
        assert families["nginx_discovery_request_duration_seconds"].type == "histogram"
        assert families["nginx_discovery_gateway_responses"].samples[0].name.endswith("_total")
    finally:
        nginx.stop()

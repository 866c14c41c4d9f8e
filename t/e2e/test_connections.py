"""A worker short of connections fails the polls that find none free, and
only those; it never crashes, and its polls recover once connections are
free again.  Polls in flight are capped at a quarter of
worker_connections, so that many services due at once go out in waves
rather than take every connection.
"""

import socket

import httpx

from support import Gateway, free_port, wait_until

SERVICES = 30

# nginx in a prefix of its own, with worker_connections to choose
HEAD = """\
user              root;
worker_processes  1;
master_process    on;
error_log         logs/error.log {log_level};
pid               logs/nginx.pid;

events {{
    worker_connections  {connections};
}}

http {{
    access_log  off;
    client_body_temp_path  temp/client;
    proxy_temp_path        temp/proxy;
    fastcgi_temp_path      temp/fastcgi;
    uwsgi_temp_path        temp/uwsgi;
    scgi_temp_path         temp/scgi;
"""

CONF = "load_module {module};\n\n" + HEAD + """
    discovery_zone  4m;
{discovery_services}

    upstream docs {{
        server  127.0.0.1:{docs};
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
    }}
}}
"""

DOCS = HEAD + """
    server {{
        listen  127.0.0.1:{docs};
        location /docs/ {{ root {root}; }}
    }}
}}
"""


def services(docs):
    return "\n".join(
        f"    discovery_service  s{i}  http://127.0.0.1:{docs} "
        f"uri=/docs/s{i}.json interval=1s upstream=docs;"
        for i in range(SERVICES))


def start(tmp_path, connections):
    docs_port = free_port()
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    for i in range(SERVICES):
        (root / "docs" / f"s{i}.json").write_text(
            f'{{"routes": [{{"path": "/s{i}"}}]}}')
    docs_dir = tmp_path / "docs"
    docs_dir.mkdir()
    docs = Gateway(docs_dir, [], template=DOCS, docs=docs_port, root=root,
                   connections=1024)
    gw_dir = tmp_path / "gateway"
    gw_dir.mkdir()
    gateway = Gateway(gw_dir, [], template=CONF, docs=docs_port,
                      connections=connections,
                      discovery_services=services(docs_port))
    return docs, gateway


def test_a_worker_short_of_connections_fails_polls_not_itself(tmp_path):
    docs, gateway = start(tmp_path, connections=24)
    docs.start()
    gateway.start()
    hogs = []
    try:
        healthy = dict.fromkeys((f"s{i}" for i in range(SERVICES)), "healthy")
        gateway.wait_for_states(healthy, timeout=20)

        # clients in the middle of their request take every connection the
        # worker has left (nginx reuses idle ones, not these)
        port = int(gateway.url.rsplit(":", 1)[1])
        for _ in range(30):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /s1 HTTP/1.1\r\nHost: x\r\n")
            hogs.append(s)
        wait_until(gateway.error_log.read_text,
                   lambda log: "no free connection in this worker" in log, 15,
                   message="a poll failed for want of a connection")

        for s in hogs:
            s.close()
        hogs = []
        gateway.wait_for_states(healthy, timeout=20)
        assert httpx.get(gateway.url + "/s7").status_code in (200, 404)

        log = gateway.error_log.read_text()
        assert "exited on signal" not in log, log[-2000:]
    finally:
        for s in hogs:
            s.close()
        gateway.stop()
        docs.stop()

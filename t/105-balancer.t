# discovery_balancer: a static "proxy_pass http://discovery" to an upstream
# block that hands each routed request to its service's upstream: blocks
# with keepalive, implicit host:port upstreams, upstream=, TLS and gRPC,
# reloads and the registry's services; and what nginx -t refuses.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use EtcdMock;
use File::Temp qw(tempdir);

no_shuffle();
no_root_location();

# reload_config() and the registry's reloads need the master
master_process_enabled(1);

my $pki = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_PKI} = $pki;

# a self-signed certificate for the TLS service (its polls do not verify)
my $err = `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $pki/server.key -out $pki/server.pem -days 2 -subj /CN=secure 2>&1`;
die "openssl failed: $err" if $?;

for my $name (qw(CHAT USERS POOL TLS H2 FLAKY LATE ETCD REG)) {
    $ENV{"TEST_NGINX_${name}_PORT"} = free_port();
}

# a service that answers one route document, then fails: its route is 503
mock_service(
    port => $ENV{TEST_NGINX_FLAKY_PORT},
    paths => {
        '/flap5' => [
            { body => '{"routes": [{"path": "/flaky/{id}", "methods": ["GET"]}]}' },
            { status => 500, body => 'down' } ],
    },
);

# the registry: one service, at an address (an upstream of its own)
mock_service(
    port => $ENV{TEST_NGINX_ETCD_PORT},
    paths => {
        '/v3/kv/range' => [ { body => range(5,
            kv('reg', qq({"url":"http://127.0.0.1:$ENV{TEST_NGINX_REG_PORT}","interval":"1s"}), 4)) } ],
        '/v3/watch' => [ { hang => 1 } ],
    },
);

our $Backends = <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_CHAT_PORT;
        default_type application/json;
        location = /health {
            return 200 '{"routes": [{"path": "/chat/{id}", "methods": ["GET"]}]}';
        }
        location = /orders-health {
            return 200 '{"routes": [{"path": "/orders/{id}", "methods": ["GET"]}]}';
        }
        location = /shop-health {
            return 200 '{"routes": [{"path": "/shop.Catalog/Get", "protocol": "grpc"}]}';
        }
        location / {
            return 200 "chat $request_method $request_uri $connection_requests\n";
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_USERS_PORT;
        default_type application/json;
        location = /health {
            return 200 '{"routes": [{"path": "/users/{id}", "methods": ["GET", "POST"]}]}';
        }
        location / {
            return 200 "users $request_method $request_uri $connection_requests host=$http_host\n";
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_POOL_PORT;
        location / {
            return 200 "pool $request_uri\n";
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_H2_PORT http2;
        location / {
            return 200 "h2 $request_method $request_uri $server_protocol\n";
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_LATE_PORT;
        default_type application/json;
        location = /health {
            return 200 '{"routes": [{"path": "/late/{id}", "methods": ["GET"]}]}';
        }
        location / {
            return 200 "late $request_uri\n";
        }
    }
_EOC_

our $Services = <<'_EOC_';
    discovery_service chat http://127.0.0.1:$TEST_NGINX_CHAT_PORT;
    discovery_service users http://127.0.0.1:$TEST_NGINX_USERS_PORT;
    discovery_service orders http://127.0.0.1:$TEST_NGINX_CHAT_PORT uri=/orders-health upstream=pool;
    discovery_service shop http://127.0.0.1:$TEST_NGINX_CHAT_PORT uri=/shop-health upstream=shop_h2;

    upstream discovery {
        discovery_balancer;
    }
    upstream users {
        server 127.0.0.1:$TEST_NGINX_USERS_PORT;
        keepalive 4;
    }
    upstream pool {
        server 127.0.0.1:$TEST_NGINX_POOL_PORT;
    }
    upstream shop_h2 {
        server 127.0.0.1:$TEST_NGINX_H2_PORT;
    }
_EOC_

# the TLS service, only in the blocks about it: its polls' handshakes are
# slow under valgrind
our $Tls = <<'_EOC_';
    discovery_ssl_verify off;
    discovery_service secure https://127.0.0.1:$TEST_NGINX_TLS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
        ssl_certificate $TEST_NGINX_PKI/server.pem;
        ssl_certificate_key $TEST_NGINX_PKI/server.key;
        default_type application/json;
        location = /health {
            return 200 '{"routes": [{"path": "/s/{id}", "methods": ["GET"]}]}';
        }
        location / {
            return 200 "secure $request_uri $https\n";
        }
    }
_EOC_

our $Config = <<'_EOC_';
    location / {
        discovery_route on;
        proxy_pass http://discovery;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
    location /via-tls/ {
        rewrite ^/via-tls(/.*)$ $1 break;
        discovery_route on;
        proxy_pass https://discovery;
    }
    location /shop.Catalog/ {
        discovery_route on;
        grpc_pass grpc://discovery;
    }
    location /unrouted/ {
        proxy_pass http://discovery;
    }
    location = /_discovery {
        discovery_status;
    }
_EOC_

use_defaults(
    http_config => $Services . $Backends,
    config => $Config,
    init => "DiscoveryTest::wait_ready()",
);

run_tests();

__DATA__

=== TEST 1: routes to a service's upstream block, whose keepalive is used
--- request eval
["GET /users/1", "POST /users/2", "GET /users/3"]
--- response_body eval
["users GET /users/1 1 host=discovery\n",
 "users POST /users/2 2 host=discovery\n",
 "users GET /users/3 3 host=discovery\n"]



=== TEST 2: a service without a block goes to its URL's host:port, no keepalive
--- request eval
["GET /chat/1", "GET /chat/2"]
--- response_body eval
["chat GET /chat/1 1\n", "chat GET /chat/2 1\n"]



=== TEST 3: upstream= names the block the service's requests go to
--- request
GET /orders/7
--- response_body
pool /orders/7



=== TEST 4: the gateway's own answers are unchanged: 404, 405
--- request eval
["GET /nope", "DELETE /chat/1"]
--- error_code eval
[404, 405]
--- response_body eval
["{\"detail\": \"Endpoint not available\", \"path\": \"/nope\"}\n",
 qr/"detail": "Method not allowed"/]



=== TEST 5: and 503 for a service gone unhealthy
--- http_config eval
$::Services . "    discovery_service flaky http://127.0.0.1:\$TEST_NGINX_FLAKY_PORT uri=/flap5 interval=1s;\n" . $::Backends
--- init
DiscoveryTest::wait_status(qr/"name":"flaky","url":"[^"]*","upstream":"[^"]*","state":"unhealthy"/);
--- request
GET /flaky/1
--- error_code: 503
--- response_body
{"detail": "Service unavailable", "path": "/flaky/1", "service": "flaky"}



=== TEST 6: a request no discovery_route routed: 500, and the error says why
--- request
GET /unrouted/x
--- error_code: 500
--- error_log
discovery: a request that was not routed reached upstream "discovery": "discovery_balancer" needs "discovery_route on" in the location that proxies to it



=== TEST 7: an https service through "http://discovery": 502, not plain text to its TLS port
--- http_config eval: $::Services . $::Tls . $::Backends
--- request
GET /s/1
--- error_code: 502
--- error_log eval
qr/\[error\] .*discovery: service "secure" at "https:\/\/127\.0\.0\.1:\d+" is not reached through "http:\/\/discovery", which is plain text: a location with services of both kinds proxies to "\$discovery_scheme:\/\/\$discovery_upstream"/



=== TEST 8: "https://discovery" reaches it over TLS
--- http_config eval: $::Services . $::Tls . $::Backends
--- request
GET /via-tls/s/1
--- response_body
secure /s/1 on



=== TEST 9: and refuses an http service
--- http_config eval: $::Services . $::Tls . $::Backends
--- request
GET /via-tls/chat/1
--- error_code: 502
--- error_log eval
qr/discovery: service "chat" at "http:\/\/127\.0\.0\.1:\d+" is not reached through "https:\/\/discovery", which is TLS/



=== TEST 10: grpc_pass grpc://discovery speaks HTTP/2 to the service's upstream
--- request
POST /shop.Catalog/Get
hello
--- response_body
h2 POST /shop.Catalog/Get HTTP/2.0



=== TEST 10.1: and beside proxy_pass, by $discovery_protocol, as the variable form does
--- config
    location / {
        discovery_route on;
        if ($discovery_protocol = grpc) {
            grpc_pass grpc://discovery;
        }
        proxy_pass http://discovery;
    }
    location = /_discovery {
        discovery_status;
    }
--- request eval
["POST /shop.Catalog/Get\nhello", "GET /chat/1"]
--- response_body eval
["h2 POST /shop.Catalog/Get HTTP/2.0\n", "chat GET /chat/1 1\n"]



=== TEST 11: a reload that adds a service: its routes go to its upstream
--- http_config eval: $::Services . "# LATE\n" . $::Backends
--- init
DiscoveryTest::wait_ready();
Test::More::is(DiscoveryTest::reload_config(sub {
    my $conf = shift;
    $conf =~ s{# LATE}{discovery_service late http://127.0.0.1:$ENV{TEST_NGINX_LATE_PORT};};
    return $conf;
}), 'reloaded', 'reloaded');
DiscoveryTest::wait_status(qr/"name":"late","url":"[^"]*","upstream":"[^"]*","state":"healthy"/);
--- request eval
["GET /late/1", "GET /users/1", "GET /chat/1"]
--- response_body eval
["late /late/1\n", qr/^users GET \/users\/1 \d+ host=discovery\n/, "chat GET /chat/1 1\n"]



=== TEST 11.1: an old worker routes a service only the new configuration has to its address
--- http_config eval: $::Services . "# LATE\n" . $::Backends
--- init
DiscoveryTest::wait_ready();
my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
my $old = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                Proto => 'tcp', Timeout => 10)
    or die "connect: $!";
# a request not yet whole: the old worker keeps its connection through the
# reload (whose wait for the old worker to go times out, but under valgrind,
# where the worker's title does not say "shutting down")
print $old "GET /late/2 HTTP/1.0\r\nHost: localhost\r\n";
sleep 0.3;
Test::More::isnt(DiscoveryTest::reload_config(sub {
    my $conf = shift;
    $conf =~ s{# LATE}{discovery_service late http://127.0.0.1:$ENV{TEST_NGINX_LATE_PORT};};
    return $conf;
}, 3), 'failed', 'reloaded, the old worker holding the request it reads');
DiscoveryTest::wait_status(qr/"name":"late","url":"[^"]*","upstream":"[^"]*","state":"healthy"/, 10)
    && DiscoveryTest::wait_status(qr{"/late/\{id\}"});
print $old "\r\n";
my $res = do { local $/; <$old> };
Test::More::like($res, qr{^HTTP/1\.1 200 .*\r\n\r\nlate /late/2\n\z}s,
                 'the old worker proxied it');
--- request
GET /late/1
--- response_body
late /late/1



=== TEST 12: a service of the registry, at an address: an upstream of its own
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_PORT;
    upstream discovery { discovery_balancer; }
    server {
        listen 127.0.0.1:$TEST_NGINX_REG_PORT;
        default_type application/json;
        location = /health {
            return 200 '{"routes": [{"path": "/reg/{id}", "methods": ["GET"]}]}';
        }
        location / {
            return 200 "registry's $request_uri\n";
        }
    }
--- init
DiscoveryTest::wait_status(qr/"name":"reg","url":"[^"]*","upstream":"[^"]*","state":"healthy","drained":false,"origin":"registry"/, 10);
--- request
GET /reg/1
--- response_body
registry's /reg/1



=== TEST 13: "server" before discovery_balancer: nginx -t names the line
--- http_config
    discovery_service chat http://127.0.0.1:1;
    upstream discovery {
        server 127.0.0.1:1;
        discovery_balancer;
    }
--- config
--- init
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\] .*"discovery_balancer" in upstream "discovery", which has "server" lines: its servers are the routed services' in \S+nginx\.conf:\d+/



=== TEST 14: "server" after it
--- http_config
    discovery_service chat http://127.0.0.1:1;
    upstream discovery {
        discovery_balancer;
        server 127.0.0.1:1;
    }
--- config
--- init
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\] .*"server" in upstream "discovery", which has "discovery_balancer", in \S+nginx\.conf:\d+: its servers are the routed services'/



=== TEST 15: discovery_balancer twice
--- http_config
    discovery_service chat http://127.0.0.1:1;
    upstream discovery {
        discovery_balancer;
        discovery_balancer;
    }
--- config
--- init
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\] .*"discovery_balancer" directive is duplicate in \S+nginx\.conf:\d+/



=== TEST 16: outside an upstream block
--- http_config
    discovery_service chat http://127.0.0.1:1;
    discovery_balancer;
--- config
--- init
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\] .*"discovery_balancer" directive is not allowed here in \S+nginx\.conf:\d+/



=== TEST 17: keepalive before it in its block
--- http_config
    discovery_service chat http://127.0.0.1:1;
    upstream discovery {
        keepalive 8;
        discovery_balancer;
    }
--- config
--- init
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\] .*"discovery_balancer" after another balancing method or "keepalive" in upstream "discovery": they belong in the services' own upstream blocks in \S+nginx\.conf:\d+/



=== TEST 18: keepalive after it
--- http_config
    discovery_service chat http://127.0.0.1:1;
    upstream discovery {
        discovery_balancer;
        keepalive 8;
    }
--- config
--- init
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\] .*upstream "discovery" with "discovery_balancer" in \S+nginx\.conf:\d+ has another balancing method or "keepalive": they belong in the services' own upstream blocks/



=== TEST 19: another balancing method after it
--- http_config
    discovery_service chat http://127.0.0.1:1;
    upstream discovery {
        discovery_balancer;
        least_conn;
    }
--- config
--- init
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\] .*upstream "discovery" with "discovery_balancer" in \S+nginx\.conf:\d+ has another balancing method/



=== TEST 20: a zone in its block
--- http_config
    discovery_service chat http://127.0.0.1:1;
    upstream discovery {
        discovery_balancer;
        zone discovery 64k;
    }
--- config
--- init
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\] .*"zone" in upstream "discovery", which has "discovery_balancer", in \S+nginx\.conf:\d+/



=== TEST 21: a service whose upstream= is the balancer would loop
--- http_config
    discovery_service chat http://127.0.0.1:1 upstream=discovery;
    upstream discovery { discovery_balancer; }
--- config
--- init
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\] .*upstream "discovery" of discovery_service "chat" has "discovery_balancer", which would send the service's requests back to itself, in \S+nginx\.conf:\d+/



=== TEST 22: and so would a service named like it
--- http_config
    discovery_service discovery http://127.0.0.1:1;
    upstream discovery { discovery_balancer; }
--- config
--- init
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\] .*upstream "discovery" of discovery_service "discovery" has "discovery_balancer"/

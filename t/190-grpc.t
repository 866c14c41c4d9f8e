# gRPC: the configuration of grpc:// services, polls of servers that are
# not gRPC, and the gateway's own answers to gRPC requests.  Real gRPC
# servers are in t/e2e/test_grpc.py.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

no_shuffle();
no_root_location();

my $mock = free_port();
$ENV{TEST_NGINX_MOCK_PORT} = $mock;

mock_service(
    port => $mock,
    paths => {
        '/hang' => [ { hang => 1 } ],
        '/doc'  => [ { body => '{"routes": [
            {"path": "/shop.Catalog/Get", "protocol": "grpc"},
            {"path": "/shop.Catalog/Watch", "protocol": "grpc", "streaming": "server"},
            {"path": "/rest", "methods": ["GET"]}]}' } ],
    },
);

# a service whose routes are gRPC, declared in its route document
our $DocConfig = <<'_EOC_';
    discovery_service shop http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/doc interval=10s;
_EOC_

use_defaults(no_error_log => "[alert]\n[emerg]\n[crit]");

run_tests();

__DATA__

=== TEST 1: grpc:// and grpcs:// services, and the block that sends gRPC routes to grpc_pass
--- http_config
    discovery_service shop grpc://127.0.0.1:1 format=grpc interval=10s;
    discovery_service ledger grpcs://localhost:2 grpc_internal=on timeout=2s fails=2;
    discovery_service plain grpc://127.0.0.1 grpc_internal=off;
--- config
    location = /t { return 200 ok; }
    location / {
        discovery_route on;
        if ($discovery_protocol = grpc) {
            grpc_pass $discovery_scheme://$discovery_upstream;
        }
        proxy_pass $discovery_scheme://$discovery_upstream;
    }
--- request
GET /t
--- response_body chomp
ok



=== TEST 2: format=grpc needs a gRPC URL, named by the directive's file and line
--- http_config
    discovery_service shop http://127.0.0.1:1 format=grpc;
--- config
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\] .*"format=grpc" of discovery_service "shop" needs a grpc:\/\/ or grpcs:\/\/ URL in \S+nginx\.conf:\d+/



=== TEST 3: a gRPC URL is polled by reflection, not as a document
--- http_config
    discovery_service shop grpc://127.0.0.1:1 format=openapi;
--- config
--- must_die
--- no_error_log
[alert]
--- error_log
"format=openapi" of discovery_service "shop" needs an http:// or https:// URL



=== TEST 4: grpc_internal is for gRPC services
--- http_config
    discovery_service shop http://127.0.0.1:1 grpc_internal=on;
--- config
--- must_die
--- no_error_log
[alert]
--- error_log
"grpc_internal=on" of discovery_service "shop" needs a grpc:// or grpcs:// URL



=== TEST 5: grpc_internal is on or off
--- http_config
    discovery_service shop grpc://127.0.0.1:1 grpc_internal=yes;
--- config
--- must_die
--- no_error_log
[alert]
--- error_log
invalid parameter "grpc_internal=yes", it must be "grpc_internal=on" or "grpc_internal=off"



=== TEST 6: uri= does not apply to a gRPC service
--- http_config
    discovery_service shop grpc://127.0.0.1:1 uri=/health;
--- config
--- must_die
--- no_error_log
[alert]
--- error_log
"uri=" does not apply to the gRPC service "shop": it is polled by reflection



=== TEST 7: a gRPC URL has no path
--- http_config
    discovery_service shop grpc://127.0.0.1:1/api;
--- config
--- must_die
--- no_error_log
[alert]
--- error_log
the gRPC URL "grpc://127.0.0.1:1/api" of discovery_service "shop" cannot have a path



=== TEST 8: an unknown format names grpc among the formats
--- http_config
    discovery_service shop grpc://127.0.0.1:1 format=protobuf;
--- config
--- must_die
--- no_error_log
[alert]
--- error_log
invalid format "protobuf", it must be "auto", "routes", "openapi" or "grpc"



=== TEST 9: an HTTP/2 server that is not gRPC is a failed poll that says so
--- http_config
    discovery_service web grpc://127.0.0.1:$TEST_NGINX_RAND_PORT_1 interval=10s;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 http2;
        location / { return 404; }
    }
--- config eval: $DiscoveryTest::GatewayConfig
--- init
DiscoveryTest::wait_ready();
--- request
GET /_discovery
--- response_body_like: "state":"unhealthy".*"last_error":"HTTP status 404 to /grpc.health.v1.Health/Check: not a gRPC server"
--- error_log
poll of service "web" at "grpc://127.0.0.1:
failed: HTTP status 404 to /grpc.health.v1.Health/Check: not a gRPC server



=== TEST 10: an HTTP/1.1 server is a failed poll
--- http_config
    discovery_service web grpc://127.0.0.1:$TEST_NGINX_RAND_PORT_1 interval=10s;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 200 '{"routes": []}'; }
    }
--- config eval: $DiscoveryTest::GatewayConfig
--- init
DiscoveryTest::wait_ready();
--- request
GET /_discovery
--- response_body_like: "state":"unhealthy".*"last_error":"/grpc.health.v1.Health/Check: [^"]+\(not an HTTP/2 gRPC server\?\)"



=== TEST 11: a gRPC server without reflection: UNIMPLEMENTED to every call
--- http_config
    discovery_service bare grpc://127.0.0.1:$TEST_NGINX_RAND_PORT_1 interval=10s;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 http2;
        location / {
            default_type application/grpc;
            add_header grpc-status 12;
            add_header grpc-message "Method not found!";
            return 200 "";
        }
    }
--- config eval: $DiscoveryTest::GatewayConfig
--- init
DiscoveryTest::wait_ready();
--- request
GET /_discovery
--- response_body_like: "last_error":"no server reflection \(v1 nor v1alpha\): grpc-status 12 UNIMPLEMENTED \\"Method not found!\\""



=== TEST 12: gRPC routes of a route document are routed, and $discovery_protocol says so
--- http_config eval: $::DocConfig
--- config
    location / {
        discovery_route on;
        add_header X-Protocol "$discovery_protocol $discovery_scheme $discovery_route" always;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery { discovery_status; }
--- init
DiscoveryTest::wait_ready();
--- request
POST /shop.Catalog/Watch
--- more_headers
Content-Type: application/grpc
--- response_headers
X-Protocol: grpc grpc /shop.Catalog/Watch
--- response_body
mock POST /shop.Catalog/Watch



=== TEST 13: an HTTP route beside them is http
--- http_config eval: $::DocConfig
--- config
    location / {
        discovery_route on;
        add_header X-Protocol "$discovery_protocol $discovery_scheme" always;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery { discovery_status; }
--- init
DiscoveryTest::wait_ready();
--- request
GET /rest
--- response_headers
X-Protocol: http http
--- response_body
mock GET /rest



=== TEST 14: an if in the rewrite phase sees the protocol of the route
--- http_config eval: $::DocConfig
--- config
    location / {
        discovery_route on;
        if ($discovery_protocol = grpc) {
            return 200 "to grpc_pass $discovery_scheme://$discovery_upstream$discovery_route\n";
        }
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery { discovery_status; }
--- init
DiscoveryTest::wait_ready();
--- request
POST /shop.Catalog/Get
--- response_body_like: ^to grpc_pass grpc://127\.0\.0\.1:\d+/shop\.Catalog/Get$



=== TEST 15: a variable read before a rewrite does not keep the old URI's decision
--- http_config eval: $::DocConfig
--- config
    location /old/ {
        discovery_route on;
        set $before "$discovery_protocol";
        rewrite ^/old(/.*)$ $1 last;
    }
    location / {
        discovery_route on;
        if ($discovery_protocol = grpc) {
            return 200 "grpc $discovery_route\n";
        }
        return 200 "not grpc\n";
    }
    location = /_discovery { discovery_status; }
--- init
DiscoveryTest::wait_ready();
--- request
POST /old/shop.Catalog/Get
--- response_body
grpc /shop.Catalog/Get



=== TEST 16: an unknown method of a gRPC request: HTTP 200, grpc-status 12, no body
--- http_config eval: $::DocConfig
--- config eval: $DiscoveryTest::GatewayConfig
--- init
DiscoveryTest::wait_ready();
--- request
POST /shop.Catalog/Nope
--- more_headers
Content-Type: application/grpc
--- error_code: 200
--- response_headers
Content-Type: application/grpc
Content-Length: 0
grpc-status: 12
grpc-message: Endpoint not available: /shop.Catalog/Nope
--- response_body_like: ^$



=== TEST 17: application/grpc+proto is gRPC too; a method the route does not take is 12
--- http_config eval: $::DocConfig
--- config eval: $DiscoveryTest::GatewayConfig
--- init
DiscoveryTest::wait_ready();
--- request
PUT /rest
--- more_headers
Content-Type: application/grpc+proto
--- error_code: 200
--- response_headers
grpc-status: 12
grpc-message: Method not allowed: /rest
!Allow



=== TEST 18: the same unknown method without gRPC's content type keeps its JSON 404
--- http_config eval: $::DocConfig
--- config eval: $DiscoveryTest::GatewayConfig
--- init
DiscoveryTest::wait_ready();
--- request
POST /shop.Catalog/Nope
--- error_code: 404
--- response_headers
Content-Type: application/json
!grpc-status
--- response_body
{"detail": "Endpoint not available", "path": "/shop.Catalog/Nope"}



=== TEST 19: a non-canonical path is 3 INVALID_ARGUMENT, also where others are redirected
--- http_config eval: $::DocConfig
--- config
    location / {
        discovery_route on;
        discovery_noncanonical redirect;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery { discovery_status; }
--- init
DiscoveryTest::wait_ready();
--- request
POST /shop.Catalog//Get
--- more_headers
Content-Type: application/grpc
--- error_code: 200
--- response_headers
grpc-status: 3
grpc-message: Path is not canonical: /shop.Catalog//Get
!Location



=== TEST 20: bytes of the path outside printable ASCII are percent-encoded in grpc-message
--- http_config eval: $::DocConfig
--- config eval: $DiscoveryTest::GatewayConfig
--- init
DiscoveryTest::wait_ready();
--- request
POST /shop.Catalog/N%C3%A9%25
--- more_headers
Content-Type: application/grpc
--- response_headers
grpc-status: 12
grpc-message: Endpoint not available: /shop.Catalog/N%C3%A9%25



=== TEST 21: discovery still pending: 14 UNAVAILABLE
--- http_config
    discovery_service slow http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=30s;
--- config eval: $DiscoveryTest::GatewayConfig
--- request
POST /shop.Catalog/Get
--- more_headers
Content-Type: application/grpc
--- error_code: 200
--- response_headers
grpc-status: 14
grpc-message: Service discovery pending
!Retry-After




=== TEST 22: application/grpc-web is another protocol: JSON answers, as for any request
--- http_config eval: $::DocConfig
--- config eval: $DiscoveryTest::GatewayConfig
--- init
DiscoveryTest::wait_ready();
--- request
POST /shop.Catalog/Nope
--- more_headers
Content-Type: application/grpc-web+proto
--- error_code: 404
--- response_headers
Content-Type: application/json
!grpc-status



=== TEST 23: application/grpc with parameters is gRPC
--- http_config eval: $::DocConfig
--- config eval: $DiscoveryTest::GatewayConfig
--- init
DiscoveryTest::wait_ready();
--- request
POST /shop.Catalog/Nope
--- more_headers
Content-Type: Application/GRPC; charset=utf-8
--- error_code: 200
--- response_headers
grpc-status: 12

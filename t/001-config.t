# Configuration: what nginx accepts, and the errors for what it must not.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

no_shuffle();
no_root_location();

use_defaults(
    config => "location = /t { return 200 ok; }",
    request => "GET /t",
    no_error_log => "[alert]\n[crit]",
);

run_tests();

__DATA__

=== TEST 1: a full configuration loads
--- http_config
    discovery_zone 1m;
    discovery_max_size 512k;
    discovery_service chat http://127.0.0.1:1;
    discovery_service users https://localhost:8443/base/ interval=10s timeout=2s fails=3 passes=2 uri=/healthz upstream=users_pool format=routes;
    discovery_service billing http://[::1]:8003 uri=/openapi.json format=openapi;
    upstream users_pool { server 127.0.0.1:2; }
--- config
    location = /t { return 200 ok; }
    location / { discovery_route on; proxy_pass http://$discovery_upstream; }
    location = /_discovery { discovery_status; }
--- response_body chomp
ok
--- no_error_log
[emerg]
[alert]



=== TEST 2: duplicate service
--- http_config
    discovery_service chat http://127.0.0.1:1;
    discovery_service chat http://127.0.0.1:2;
--- must_die
--- error_log
duplicate discovery_service "chat"



=== TEST 3: unknown option
--- http_config
    discovery_service chat http://127.0.0.1:1 every=5s;
--- must_die
--- error_log
invalid parameter "every=5s"



=== TEST 4: a URL that is not http or https
--- http_config
    discovery_service chat ftp://127.0.0.1:1;
--- must_die
--- error_log
invalid URL "ftp://127.0.0.1:1" of discovery_service "chat", it must start with "http://", "https://", "grpc://" or "grpcs://"



=== TEST 5: a URL without a host
--- http_config
    discovery_service chat http:///health;
--- must_die
--- error_log
of discovery_service "chat"



=== TEST 6: a URL with a bad port
--- http_config
    discovery_service chat http://127.0.0.1:99999;
--- must_die
--- error_log
invalid port in URL "http://127.0.0.1:99999" of discovery_service "chat"



=== TEST 7: interval below one second
--- http_config
    discovery_service chat http://127.0.0.1:1 interval=500ms;
--- must_die
--- error_log
invalid interval "500ms", the minimum is 1s



=== TEST 8: a zone too small
--- http_config
    discovery_zone 8k;
    discovery_service chat http://127.0.0.1:1;
--- must_die
--- error_log
discovery zone "8k" is too small, the minimum is 64k



=== TEST 9: discovery_zone twice
--- http_config
    discovery_zone 1m;
    discovery_zone 2m;
--- must_die
--- error_log
"discovery_zone" directive is duplicate



=== TEST 10: bad fails and passes
--- http_config
    discovery_service chat http://127.0.0.1:1 fails=0;
--- must_die
--- error_log
invalid parameter "fails=0"



=== TEST 11: an upstream= that names no upstream block
--- http_config
    discovery_service chat http://127.0.0.1:1 upstream=nowhere;
--- must_die
--- error_log
upstream "nowhere" of discovery_service "chat" is not defined



=== TEST 12: an unknown format
--- http_config
    discovery_service chat http://127.0.0.1:1 format=yaml;
--- must_die
--- error_log
invalid format "yaml", it must be "auto", "routes", "openapi" or "grpc"



=== TEST 13: a uri= that is not a path
--- http_config
    discovery_service chat http://127.0.0.1:1 uri=health;
--- must_die
--- error_log
invalid uri "health", it must start with "/"



=== TEST 14: a bad service name
--- http_config
    discovery_service "chat room" http://127.0.0.1:1;
--- must_die
--- error_log
invalid service name "chat room"



=== TEST 15: discovery_route takes on or off
--- http_config
    discovery_service chat http://127.0.0.1:1;
--- config
    location / { discovery_route maybe; }
--- must_die
--- error_log
invalid value "maybe" in "discovery_route" directive, it must be "on" or "off"



=== TEST 16: discovery_service only in http
--- config
    location / { discovery_service chat http://127.0.0.1:1; }
--- must_die
--- error_log
"discovery_service" directive is not allowed here



=== TEST 17: an upstream= that names no upstream block: the error names the service's line
--- http_config
    discovery_service chat http://127.0.0.1:1;
    discovery_service users http://127.0.0.1:2 upstream=nowhere;
    server { listen 127.0.0.1:1; }
--- must_die
--- error_log eval
qr/\[emerg\].*upstream "nowhere" of discovery_service "users" is not defined in \S+nginx\.conf:\d+/
--- grep_error_log eval: qr/nginx\.conf:\d+/
--- grep_error_log_out eval
qr/\Anginx\.conf:(\d+)\n\z/



=== TEST 18: "http://" alone has no host
--- http_config
    discovery_service chat http://;
--- must_die
--- error_log eval
qr/\[emerg\].*no host in URL "http:\/\/" of discovery_service "chat" in \S+nginx\.conf:\d+/



=== TEST 19: user and password in the URL are accepted, the password never shown
--- http_config
    discovery_service chat http://alice:s3cr%40t@127.0.0.1:1/base;
--- config
    location = /t { return 200 ok; }
    location = /_discovery { discovery_status; }
--- request
GET /_discovery
--- response_body_like: "url":"http://alice:\*\*\*@127\.0\.0\.1:1/base"
--- no_error_log
s3cr
[emerg]



=== TEST 20: "@" without a user name
--- http_config
    discovery_service chat http://@127.0.0.1:1;
--- must_die
--- error_log
no user name before "@" in the URL of discovery_service "chat"



=== TEST 21: discovery_route on with no service to route to
--- config
    location / { discovery_route on; proxy_pass http://$discovery_upstream; }
--- must_die
--- error_log eval
qr/\[emerg\].*"discovery_route on" with no discovery_service to route to in \S+nginx\.conf:\d+/



=== TEST 22: discovery_max_size 0
--- http_config
    discovery_max_size 0;
    discovery_service chat http://127.0.0.1:1;
--- must_die
--- error_log eval
qr/\[emerg\].*"discovery_max_size" directive must be greater than 0 in \S+nginx\.conf:\d+/



=== TEST 23: the status page in a location that routes would never be served
--- http_config
    discovery_service chat http://127.0.0.1:1;
--- config
    location / {
        discovery_route on;
        discovery_status;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*"discovery_status" in a location with "discovery_route on" is never served in \S+nginx\.conf:\d+/



=== TEST 24: nor where it inherits discovery_route on
--- http_config
    discovery_service chat http://127.0.0.1:1;
--- config
    discovery_route on;
    location = /_discovery { discovery_status; }
--- must_die
--- error_log eval
qr/\[emerg\].*"discovery_status" in a location with "discovery_route on" is never served/



=== TEST 25: a TLS file that does not exist
--- http_config
    discovery_ssl_trusted_certificate /nonexistent/ca.pem;
    discovery_service chat https://127.0.0.1:1;
--- must_die
--- error_log eval
qr/\[emerg\].*stat\(\) "\/nonexistent\/ca\.pem" failed .*in \S+nginx\.conf:\d+/



=== TEST 26: a client certificate without its key
--- http_config
    discovery_ssl_certificate $TEST_NGINX_SERVER_ROOT/conf/nginx.conf;
    discovery_service chat https://127.0.0.1:1;
--- must_die
--- error_log
"discovery_ssl_certificate" and "discovery_ssl_certificate_key" go together



=== TEST 27: a service named by a host name needs no resolver, and a bad name fails nginx -t
--- http_config
    discovery_service chat http://no-such-host.invalid:8001;
--- must_die
--- error_log eval
qr/\[emerg\].*host not found in upstream "no-such-host\.invalid(:8001)?" in \S+nginx\.conf:29/

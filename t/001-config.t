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
invalid URL "ftp://127.0.0.1:1" of discovery_service "chat", it must start with "http://" or "https://"



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
invalid format "yaml", it must be "auto", "routes" or "openapi"



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

# Converters as Starlette's: {x:int} is digits alone, {x:float} digits with
# an optional fraction of one digit or more.  What Starlette would not
# match must not route there.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

no_shuffle();
no_root_location();

our $HttpConfig = <<'_EOC_';
    discovery_service s http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /health {
            default_type application/json;
            return 200 '{"status": "healthy", "routes": [
                {"path": "/n/{v:int}", "methods": ["GET"]},
                {"path": "/f/{v:float}", "methods": ["GET"]}
            ]}';
        }
        location / {
            return 200 "s $request_uri\n";
        }
    }
_EOC_

our $Config = <<'_EOC_';
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        add_header X-Route $discovery_route;
    }
    location = /_discovery {
        discovery_status;
    }
_EOC_

# what a request for $path answers: the service's echo, or the module's 404
sub answers {
    return [ map { /^s / ? "$_\n"
                         : qq({"detail": "Endpoint not available", "path": "$_"}\n) }
             @_ ];
}

use_defaults(
    http_config => $HttpConfig,
    config => $Config,
    init => "Test::More::ok(DiscoveryTest::wait_ready(), 'first poll done')",
);

run_tests();

__DATA__

=== TEST 1: {x:int} takes digits and nothing after them
--- request eval
["GET /n/5", "GET /n/0042", "GET /n/5abc", "GET /n/5.0", "GET /n/-5", "GET /n/abc"]
--- error_code eval
[200, 200, 404, 404, 404, 404]
--- response_headers eval
["X-Route: /n/{v:int}", "X-Route: /n/{v:int}", "", "", "", ""]
--- response_body eval
main::answers("s /n/5", "s /n/0042", "/n/5abc", "/n/5.0", "/n/-5", "/n/abc")



=== TEST 2: {x:float} takes digits with a fraction of one digit or more
--- request eval
["GET /f/1", "GET /f/1.5", "GET /f/1.", "GET /f/.5", "GET /f/1.5x", "GET /f/1.2.3"]
--- error_code eval
[200, 200, 404, 404, 404, 404]
--- response_headers eval
["X-Route: /f/{v:float}", "X-Route: /f/{v:float}", "", "", "", ""]
--- response_body eval
main::answers("s /f/1", "s /f/1.5", "/f/1.", "/f/.5", "/f/1.5x", "/f/1.2.3")

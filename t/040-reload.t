# Reload (HUP): the table survives, new services are polled, removed ones go.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

# fixed for the file: a service keeps its URL, hence its state, across blocks
$ENV{TEST_NGINX_A_PORT} = free_port();
$ENV{TEST_NGINX_B_PORT} = free_port();

use_hup();
master_on();
workers(2);
no_shuffle();
no_root_location();

our $Mocks = <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_A_PORT;
        location = /health {
            return 200 '{"routes": [{"path": "/a/{id}", "methods": ["GET"]}]}';
        }
        location / { return 200 "a $request_uri\n"; }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_B_PORT;
        location = /health {
            return 200 '{"routes": [{"path": "/b/{id}", "methods": ["GET"]}]}';
        }
        location / { return 200 "b $request_uri\n"; }
    }
_EOC_

our $A = "    discovery_service a http://127.0.0.1:\$TEST_NGINX_A_PORT;\n";
our $B = "    discovery_service b http://127.0.0.1:\$TEST_NGINX_B_PORT;\n";

use_defaults();

run_tests();

__DATA__

=== TEST 1: service a routes
--- http_config eval: $::A . $::Mocks
--- init
DiscoveryTest::wait_ready();
--- request
GET /a/1
--- response_body
a /a/1



=== TEST 2: right after a reload that adds b, a still routes (no pending, no 404)
--- http_config eval: $::A . $::B . $::Mocks
--- request eval
["GET /a/2", "GET /a/3"]
--- response_body eval
["a /a/2\n", "a /a/3\n"]



=== TEST 3: the new service is polled at once
--- http_config eval: $::A . $::B . $::Mocks
--- init
DiscoveryTest::wait_ready();
--- request eval
["GET /a/4", "GET /b/4"]
--- response_body eval
["a /a/4\n", "b /b/4\n"]



=== TEST 4: a removed service's routes vanish
--- http_config eval: $::B . $::Mocks
--- init
DiscoveryTest::wait_ready();
--- request eval
["GET /a/5", "GET /b/5"]
--- error_code eval
[404, 200]

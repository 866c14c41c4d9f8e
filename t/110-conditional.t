# Conditional polls: a service's ETag is sent back as If-None-Match, and a
# 304 is a good poll with nothing to parse.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

no_shuffle();
no_root_location();

use_defaults();

# the polls the mock answered, one line each: "status:If-None-Match"
sub polls {
    my $log = Test::Nginx::Util::server_root() . "/logs/mock.log";
    open my $fh, '<', $log or return 0;
    my @lines = <$fh>;
    return scalar @lines;
}

run_tests();

__DATA__

=== TEST 1: unchanged documents are answered 304 and the routes stay; every poll names the gateway and asks for JSON
--- user_files
>>> routes.json
{"routes": [{"path": "/a/{id}", "methods": ["GET"]}]}
--- http_config
    discovery_service s http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 uri=/routes.json interval=1s;

    log_format poll escape=none "$status:$http_if_none_match|$http_user_agent|$http_accept";
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /routes.json {
            root html;
            access_log logs/mock.log poll;
        }
        location / {
            return 200 "mock $uri\n";
        }
    }
--- config eval
$DiscoveryTest::GatewayConfig . <<'_EOC_';
    location = /mock.log {
        root logs;
    }
_EOC_
--- init
DiscoveryTest::wait_for('three polls', sub { main::polls() >= 3 }, 10);
--- request eval
["GET /a/1", "GET /mock.log"]
--- response_body eval
# the first poll fetches, later ones are conditional
["mock /a/1\n",
 qr{\A200:\|nginx-discovery/\d+\.\d+\.\d+\|application/json\n(?:304:"[^"]+"\|nginx-discovery/\d+\.\d+\.\d+\|application/json\n){2,}\z}]


=== TEST 2: an etag header in lower case, as FastAPI sends it, is sent back
--- http_config
    discovery_service s http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 uri=/routes.json interval=1s;

    log_format poll escape=none "$status:$http_if_none_match";
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /routes.json {
            access_log logs/mock.log poll;
            default_type application/json;
            if ($http_if_none_match = '"v1"') {
                return 304;
            }
            add_header etag '"v1"';
            return 200 '{"routes": [{"path": "/a/{id}", "methods": ["GET"]}]}';
        }
        location / {
            return 200 "mock $uri\n";
        }
    }
--- config eval
$DiscoveryTest::GatewayConfig . <<'_EOC_';
    location = /mock.log {
        root logs;
    }
_EOC_
--- init
DiscoveryTest::wait_for('two polls', sub { main::polls() >= 2 }, 10);
--- request eval
["GET /a/1", "GET /mock.log"]
--- response_body eval
# the first poll fetches, later ones send the tag back
["mock /a/1\n", qr/\A200:\n(?:304:"v1"\n)+\z/]

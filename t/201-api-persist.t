# discovery_api: overrides and drained services survive a restart with
# discovery_state (kept with the state file), and only a reload without.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;

no_shuffle();
no_root_location();

my $dir = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_STATE_DIR} = $dir;
$ENV{TEST_NGINX_MOCK_PORT} = free_port();

mock_service(
    port => $ENV{TEST_NGINX_MOCK_PORT},
    paths => {
        '/doc' => [ { body => '{"routes": [{"path": "/a/{id}", "methods": ["GET"]},
                                            {"path": "/b/{id}", "methods": ["GET"]}]}' } ],
    },
);

our $Config = <<'_EOC_';
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery {
        discovery_status;
    }
    location /api/ {
        discovery_api write=on;
    }
_EOC_

sub api {
    my ($method, $path, $body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  Proto => 'tcp', Timeout => 5) or die $!;
    $body = '' unless defined $body;
    print $s "$method $path HTTP/1.0\r\nHost: localhost\r\n"
        . "Content-Type: application/json\r\nContent-Length: "
        . length($body) . "\r\n\r\n$body";
    local $/;
    my $res = <$s>;
    my ($status) = $res =~ m{^HTTP/1\.\d (\d+)};
    return $status;
}

# the state file holds the table with the override (a later one than the
# zone had when the write was answered)
sub wait_saved {
    my $file = "$ENV{TEST_NGINX_STATE_DIR}/api.state";
    DiscoveryTest::wait_for("$file to hold the override", sub {
        open my $fh, '<:raw', $file or return 0;
        my $data = do { local $/; <$fh> };
        return $data =~ m{/b/\{id\}.*NGXC.*/b/\{x\}}s;
    });
}

use_defaults(config => $Config);

run_tests();

__DATA__

=== TEST 1: an override and a drain are written, and kept with the state file
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/api.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/doc;
--- init
DiscoveryTest::wait_ready();
Test::More::is(main::api('POST', '/api/overrides',
               '{"action": "disable", "path": "/b/{x}", "reason": "kept"}'), 201, 'override');
main::wait_saved();
--- request
GET /api/
--- response_body_like: "overrides_persist":"restart"



=== TEST 2: after a restart, the override applies before the first poll
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/api.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/doc interval=60s;
--- request eval
["GET /b/1", "GET /a/1", "GET /api/overrides"]
--- error_code eval
[404, 200, 200]
--- response_body_like eval
['^\{"detail": "Endpoint disabled", "path": "/b/1"\}$', '^mock GET /a/1$',
 '^\{"overrides_persist":"restart","overrides":\[\{"id":"o1","action":"disable","path":"/b/\{x\}","methods":\["\*"\],"service":null,"reason":"kept",']



=== TEST 3: a drained service stays drained over a restart; ids go on from where they were
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/api.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/doc;
--- init
DiscoveryTest::wait_ready();
Test::More::is(main::api('PATCH', '/api/services/s', '{"drain": true}'), 200, 'drained');
Test::More::is(main::api('DELETE', '/api/overrides/o1', ''), 200, 'override deleted');
DiscoveryTest::wait_for("the state file to hold the drain", sub {
    open my $fh, '<:raw', "$ENV{TEST_NGINX_STATE_DIR}/api.state" or return 0;
    my $data = do { local $/; <$fh> };
    return $data =~ /NGXC/ && $data !~ m{/b/\{x\}};
});
--- request
GET /api/
--- response_body_like: "write":true



=== TEST 4: (restarted) the service answers 503 drained; a new override gets a new id
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/api.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/doc;
--- request eval
["GET /a/1", "GET /api/services/s", "POST /api/overrides\n{\"action\": \"disable\", \"path\": \"/c\"}"]
--- more_headers
Content-Type: application/json
--- error_code eval
[503, 200, 201]
--- response_body_like eval
['"detail": "Service drained"', '"state":"healthy","drained":true', '^\{"id":"o2",']



=== TEST 5: without discovery_state, a restart starts without them, and the API says so
--- http_config
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/doc;
--- init
DiscoveryTest::wait_ready();
--- request eval
["GET /a/1", "GET /api/overrides"]
--- response_body eval
["mock GET /a/1\n", "{\"overrides_persist\":\"reload\",\"overrides\":[]}\n"]

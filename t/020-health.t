# Health: pending, failed polls, thresholds, and what each answers.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);

no_shuffle();
no_root_location();

my $ok = '{"status": "healthy", "routes": [{"path": "/a/{id}", "methods": ["GET"]}]}';
my $fail = { status => 500, body => '{"detail": "boom"}' };

my $dir = tempdir(CLEANUP => 1);
our $PollLog = "$dir/polls.log";

$ENV{TEST_NGINX_MOCK_PORT} = free_port();
$ENV{TEST_NGINX_DEAD_PORT} = free_port();
$ENV{TEST_NGINX_BLACKHOLE_PORT} = blackhole_port();

mock_service(
    port => $ENV{TEST_NGINX_MOCK_PORT},
    paths => {
        '/hang'     => [ { hang => 1 } ],
        '/flap1'    => [ { body => $ok }, $fail ],
        '/flap2'    => [ { body => $ok }, $fail ],
        '/flap3'    => [ $fail, { body => $ok } ],
        '/flap4'    => [ $fail, { body => $ok } ],
        '/degraded' => [ { body => '{"status": "degraded", "routes": []}' } ],
        '/big'      => [ { body => '{"routes": [' . ('{"path": "/x"},' x 200) . '{"path": "/y"}]}' } ],
        '/moved'    => [ { status => 302, body => '' } ],
        '/flap5'    => [ { body => $ok }, $fail ],
        # the last poll hangs: the counts stay as they are
        '/fails2'   => [ { body => $ok }, ($fail) x 2, { hang => 1 } ],
        '/fails3'   => [ { body => $ok }, ($fail) x 3, { hang => 1 } ],
        '/passes2'  => [ $fail, ({ body => $ok }) x 2, { hang => 1 } ],
        '/passes3'  => [ $fail, ({ body => $ok }) x 3, { hang => 1 } ],
    },
    log => $PollLog,
);

# Waits until the n-th poll of $path has started: the polls of a service
# follow one another, so all before it have been counted.
sub wait_polls {
    my ($path, $n) = @_;
    my $deadline = time + 10;
    my $polls = 0;
    while (time < $deadline) {
        # the mock creates the log at its first request
        if (open my $fh, '<', $PollLog) {
            $polls = grep { $_ eq "$path\n" } <$fh>;
            close $fh;
        }
        last if $polls >= $n;
        sleep 0.05;
    }
    Test::More::is($polls, $n, "poll $n of $path started");
}

# the status page's count of failed polls in a row
sub failures {
    my $port = $ENV{TEST_NGINX_SERVER_PORT};
    my $res = DiscoveryTest::http_get($port, '/_discovery') || '';
    return $res =~ /"failures":\s*(\d+)/ ? $1 : "none in: $res";
}

use_defaults();

run_tests();

__DATA__

=== TEST 1: before the first poll has finished, no match is 503, not 404
--- http_config
    discovery_service slow http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=5s;
--- request
GET /a/1
--- error_code: 503
--- response_headers
Retry-After: 1
--- response_body
{"detail": "Service discovery pending", "path": "/a/1"}



=== TEST 2: a service that cannot be reached is unhealthy and has no routes: 404
--- http_config
    discovery_service down http://127.0.0.1:$TEST_NGINX_DEAD_PORT;
--- init
DiscoveryTest::wait_status(qr/"state":\s*"unhealthy"/);
--- request
GET /a/1
--- error_code: 404
--- error_log eval
qr/\[error\].*poll of service "down" at "http:\/\/127\.0\.0\.1:\d+\/health\?include_routes=true" failed/



=== TEST 3: a service gone unhealthy keeps its routes, which answer 503
--- http_config
    discovery_service flaky http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/flap1 interval=1s;
--- init
DiscoveryTest::wait_status(qr/"state":\s*"unhealthy"/);
--- request
GET /a/1
--- error_code: 503
--- response_headers
Retry-After: 1
--- response_body
{"detail": "Service unavailable", "path": "/a/1", "service": "flaky"}
--- error_log
HTTP status 500
service "flaky" is unhealthy



=== TEST 4: below the fails threshold the last good routes keep routing
--- http_config
    discovery_service flaky http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/flap2 interval=1s fails=3;
--- init
# the failure counted, and the good poll's table published (in a thread:
# under valgrind it can come after the failure is counted)
DiscoveryTest::wait_status(qr/"state":\s*"healthy".*"failures":\s*1,.*"\/a\/\{id\}"/s);
--- request eval
["GET /a/1", "GET /_discovery"]
--- error_code eval
[200, 200]
--- response_body eval
["mock GET /a/1\n",
 qr/"name":"flaky".*"state":"healthy".*"failures":[12],.*"last_error":"HTTP status 500"/]



=== TEST 5: passes=2: one good poll is not enough to be healthy again
--- http_config
    discovery_service back http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/flap3 interval=1s passes=2;
--- init
DiscoveryTest::wait_status(qr{"/a/\{id\}"});
--- request
GET /a/1
--- error_code: 503
--- response_body
{"detail": "Service unavailable", "path": "/a/1", "service": "back"}



=== TEST 6: passes=2: two good polls make it healthy
--- http_config
    discovery_service back http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/flap4 interval=1s passes=2;
--- init
DiscoveryTest::wait_status(qr/"state":\s*"healthy"/, 6);
--- request
GET /a/1
--- error_code: 200
--- response_body
mock GET /a/1



=== TEST 7: a document whose status is not healthy is a failed poll
--- http_config
    discovery_service sick http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/degraded;
--- init
DiscoveryTest::wait_status(qr/"state":\s*"unhealthy"/);
--- request
GET /_discovery
--- response_body_like: "last_error":\s*"invalid document: status \\"degraded\\""



=== TEST 8: a document larger than discovery_max_size is a failed poll
--- http_config
    discovery_max_size 1k;
    discovery_service big http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/big;
--- init
DiscoveryTest::wait_status(qr/"state":\s*"unhealthy"/);
--- request
GET /_discovery
--- response_body_like: "last_error":\s*"document larger than 1024 bytes"



=== TEST 9: redirects are not followed
--- http_config
    discovery_service moved http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/moved;
--- init
DiscoveryTest::wait_status(qr/"state":\s*"unhealthy"/);
--- request
GET /_discovery
--- response_body_like: "last_error":\s*"HTTP status 302"



=== TEST 10: an error_page for 503 keeps Retry-After, the service's interval
--- http_config
    discovery_service flaky http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/flap5 interval=2s;
--- config
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        error_page 503 @busy;
    }
    location @busy {
        return 503 "busy\n";
    }
    location = /_discovery {
        discovery_status;
    }
--- init
DiscoveryTest::wait_status(qr/"state":\s*"unhealthy"/);
--- request
GET /a/1
--- error_code: 503
--- response_headers
Retry-After: 2
--- response_body
busy



=== TEST 11: fails=3: after two failed polls in a row the routes still route
--- http_config
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/fails2 interval=1s timeout=30s fails=3;
--- init
main::wait_polls('/fails2', 4);
Test::More::is(main::failures(), 2, 'two failures counted');
--- request
GET /a/1
--- error_code: 200
--- response_body
mock GET /a/1



=== TEST 12: fails=3: the third failed poll in a row makes the routes answer 503
--- http_config
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/fails3 interval=1s timeout=30s fails=3;
--- init
main::wait_polls('/fails3', 5);
Test::More::is(main::failures(), 3, 'three failures counted');
--- request
GET /a/1
--- error_code: 503
--- response_body
{"detail": "Service unavailable", "path": "/a/1", "service": "s"}
--- error_log
service "s" is unhealthy



=== TEST 13: passes=3: after two good polls an unhealthy service still answers 503
--- http_config
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/passes2 interval=1s timeout=30s passes=3;
--- init
main::wait_polls('/passes2', 4);
--- request
GET /a/1
--- error_code: 503
--- response_body
{"detail": "Service unavailable", "path": "/a/1", "service": "s"}



=== TEST 14: passes=3: the third good poll in a row makes it route again
--- http_config
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/passes3 interval=1s timeout=30s passes=3;
--- init
main::wait_polls('/passes3', 5);
--- request
GET /a/1
--- error_code: 200
--- response_body
mock GET /a/1
--- error_log
service "s" is healthy



=== TEST 15: a poll whose connection is still being made when its timeout passes fails, and its socket leaves epoll without an alert
libcurl 7.88 closes such a socket before it says CURL_POLL_REMOVE:
deleting the closed number from epoll logged "epoll_ctl(2, N) failed
(9: Bad file descriptor)" at each timeout.
--- http_config
    discovery_service a http://127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT timeout=200ms interval=1s;
    discovery_service b http://127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT timeout=200ms interval=1s;
--- init
DiscoveryTest::wait_status(qr/"failures":\s*[2-9]/);
--- request
GET /_discovery
--- error_code: 200
--- response_body_like: "name":"a".*"state":"unhealthy"
--- error_log eval
qr/\[error\].*poll of service "[ab]" at "[^"]+" failed: Connection timed out after \d+ milliseconds/

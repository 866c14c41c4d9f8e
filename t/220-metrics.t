# discovery_metrics: what is counted, in which format, kept over a reload.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use IO::Socket::INET;

no_shuffle();
no_root_location();
master_on();
workers(2);

$ENV{TEST_NGINX_DEAD_PORT} = free_port();
$ENV{TEST_NGINX_GONE_PORT} = free_port();
$ENV{TEST_NGINX_MANY_PORT} = free_port();
# a server of its own, with reuseport: the kernel spreads its connections
# over both workers
$ENV{TEST_NGINX_SPREAD_PORT} = free_port();

our $HttpConfig = <<'_EOC_';
    discovery_service users http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 interval=1s;
    discovery_service "we.ird-1_" http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 uri=/weird;
    discovery_service down http://127.0.0.1:$TEST_NGINX_DEAD_PORT interval=1s;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        default_type application/json;
        location = /health {
            return 200 '{"routes": [
                {"path": "/users/{id:int}", "methods": ["GET", "POST"]},
                {"path": "/teapot", "methods": ["GET"]}]}';
        }
        location = /weird {
            return 200 '{"routes": [{"path": "/w/a\\"b\\\\c", "methods": ["PUT"]}]}';
        }
        location = /teapot { return 418; }
        location / { return 200 "users $request_method $uri\n"; }
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_SPREAD_PORT reuseport;
        location / {
            discovery_route on;
            add_header X-Pid $pid;
            proxy_pass http://$discovery_upstream;
        }
    }
_EOC_

our $Config = <<'_EOC_';
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery {
        discovery_status;
    }
    location = /metrics {
        discovery_metrics;
    }
_EOC_

# one request on a connection of its own: "STATUS" and the response
sub fetch {
    my ($method, $path, $port, $headers) = @_;
    $port ||= $ENV{TEST_NGINX_SPREAD_PORT};
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 3)
        or return '';
    print $s "$method $path HTTP/1.0\r\nHost: localhost\r\n"
             . ($headers || '') . "\r\n";
    local $/;
    my $res = <$s>;
    close $s;
    return $res // '';
}

sub scrape {
    my $headers = shift;
    my $res = fetch('GET', '/metrics', $ENV{TEST_NGINX_SERVER_PORT}
                                       || $ENV{TEST_NGINX_PORT}, $headers);
    my ($body) = $res =~ /\r\n\r\n(.*)/s;
    return $body // '';
}

# the value of the sample named exactly so, labels included; 0 if absent
sub value {
    my ($body, $sample) = @_;
    for my $line (split /\n/, $body) {
        return $1 if $line =~ /^\Q$sample\E (\S+)$/;
    }
    return 0;
}

sub requests {
    my ($service, $route, $method, $code) = @_;
    (my $s = $service) =~ s/(["\\])/\\$1/g;
    (my $r = $route) =~ s/(["\\])/\\$1/g;
    return "nginx_discovery_requests_total{service=\"$s\",route=\"$r\","
           . "method=\"$method\",code=\"$code\"}";
}

sub gateway {
    return "nginx_discovery_gateway_responses_total{reason=\"$_[0]\"}";
}

# metrics_overflow_total's series of one reason
sub overflow {
    return "nginx_discovery_metrics_overflow_total{reason=\"$_[0]\"}";
}

# its three series, each 0: every request was counted by route
our $NoOverflow = qr/^nginx_discovery_metrics_overflow_total\{reason="no_slot"\}[ ]0\n
                     nginx_discovery_metrics_overflow_total\{reason="route_removed"\}[ ]0\n
                     nginx_discovery_metrics_overflow_total\{reason="unknown"\}[ ]0\n/mx;

use_defaults(http_config => $HttpConfig, config => $Config);

run_tests();

__DATA__

=== TEST 1: a fresh nginx counts nothing yet; the text format by default
--- init
DiscoveryTest::wait_ready();
my $m = main::scrape();
Test::More::unlike($m, qr/^nginx_discovery_requests_total\{/m,
                   'no request counted at start');
Test::More::like($m, $main::NoOverflow, 'no overflow at start');
Test::More::is(main::value($m, main::gateway('not_found')), 0,
               'no 404 at start');
--- request
GET /metrics
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body_like eval
qr/^# HELP nginx_discovery_requests_total .*\n# TYPE nginx_discovery_requests_total counter\n.*nginx_discovery_service_up\{service="users"\} 1\n.*nginx_discovery_service_up\{service="down"\} 0\n.*nginx_discovery_metrics_overflow_total\{reason="no_slot"\} \d+\nnginx_discovery_metrics_overflow_total\{reason="route_removed"\} \d+\nnginx_discovery_metrics_overflow_total\{reason="unknown"\} \d+\n\z/s



=== TEST 2: OpenMetrics when Accept asks for it, as Prometheus does: # EOF last, counters' families without _total
--- more_headers
Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1
--- request
GET /metrics
--- response_headers
Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8
--- response_body_like eval
qr/^# HELP nginx_discovery_requests .*\n# TYPE nginx_discovery_requests counter\n.*# TYPE nginx_discovery_gateway_responses counter\nnginx_discovery_gateway_responses_total\{reason="not_found"\} \d+\n.*# TYPE nginx_discovery_metrics_overflow counter\nnginx_discovery_metrics_overflow_total\{reason="no_slot"\} \d+\nnginx_discovery_metrics_overflow_total\{reason="route_removed"\} \d+\nnginx_discovery_metrics_overflow_total\{reason="unknown"\} \d+\n# EOF\n\z/s



=== TEST 3: text/plain preferred over OpenMetrics, or OpenMetrics refused (q=0): the text format
--- more_headers
Accept: application/openmetrics-text;q=0, text/plain
--- request
GET /metrics
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body_unlike: # EOF



=== TEST 4: known requests over two workers are each counted once, where the access phase sent them
--- init
DiscoveryTest::wait_ready();
my $before = main::scrape();
my %pids;
my %want = (
    main::requests('users', '/users/{id:int}', 'GET', '2xx') => 20,
    main::requests('users', '/users/{id:int}', 'POST', '2xx') => 3,
    main::requests('users', '/users/{id:int}', 'HEAD', '2xx') => 2,
    main::requests('users', '/teapot', 'GET', '4xx') => 4,
    main::requests("we.ird-1_", '/w/a"b\\c', 'PUT', '2xx') => 1,
    main::gateway('not_found') => 5,
    main::gateway('method_not_allowed') => 2,
    main::gateway('noncanonical') => 3,
    (map { main::overflow($_) => 0 } qw(no_slot route_removed unknown)),
);
for my $i (1 .. 20) {
    my $r = main::fetch('GET', "/users/$i");
    $pids{$1} = 1 if $r =~ /^X-Pid: (\d+)/mi;
}
main::fetch('POST', '/users/1') for 1 .. 3;
main::fetch('HEAD', '/users/1') for 1 .. 2;
main::fetch('GET', '/teapot') for 1 .. 4;
main::fetch('PUT', '/w/a%22b%5Cc');
main::fetch('GET', '/nope') for 1 .. 5;
main::fetch('DELETE', '/users/1') for 1 .. 2;
main::fetch('GET', '/users//1') for 1 .. 3;
Test::More::cmp_ok(scalar(keys %pids), '==', 2, 'both workers served');
my $after = main::scrape();
for my $k (sort keys %want) {
    Test::More::is(main::value($after, $k) - main::value($before, $k),
                   $want{$k}, $k);
}
Test::More::like($after,
    qr/^nginx_discovery_request_duration_seconds_count\{service="users",route="\/users\/\{id:int\}"\} (\d+)$/m,
    'the route has its histogram');
my ($count) = $after =~ /^nginx_discovery_request_duration_seconds_count\{service="users",route="\/users\/\{id:int\}"\} (\d+)$/m;
my ($inf) = $after =~ /^nginx_discovery_request_duration_seconds_bucket\{service="users",route="\/users\/\{id:int\}",le="\+Inf"\} (\d+)$/m;
Test::More::is($inf, $count, '+Inf is the count');
Test::More::is($count - (main::value($before,
    'nginx_discovery_request_duration_seconds_count{service="users",route="/users/{id:int}"}')),
    25, 'every request of the route timed');
--- request
GET /metrics
--- response_body_like: nginx_discovery_polls_total\{service="down",result="failure"\} [1-9]



=== TEST 5: a stopped service's routes answer 503, counted as unavailable; its failed polls as failures, and it is down
--- http_config eval
$::HttpConfig
  . "    discovery_service gone http://127.0.0.1:$ENV{TEST_NGINX_GONE_PORT} interval=1s;\n"
--- init
my $pid = DiscoveryTest::mock_service(port => $ENV{TEST_NGINX_GONE_PORT}, paths => {
    '/health?include_routes=true' =>
        [{ body => '{"routes": [{"path": "/gone/{x}", "methods": ["GET"]}]}' }],
});
DiscoveryTest::wait_for('gone to be up', sub {
    main::value(main::scrape(), 'nginx_discovery_service_up{service="gone"}') eq '1';
}, 5);
kill 'KILL', $pid;
DiscoveryTest::wait_for('gone to be down', sub {
    my $m = main::scrape();
    main::value($m, 'nginx_discovery_service_up{service="gone"}') eq '0'
        && main::value($m, 'nginx_discovery_service_state{service="gone",state="unhealthy"}') eq '1';
}, 5);
# the records say so at once; the table that routes by it follows
DiscoveryTest::wait_for('its routes to answer 503', sub {
    main::fetch('GET', '/gone/0', $ENV{TEST_NGINX_SERVER_PORT}
                                  || $ENV{TEST_NGINX_PORT}) =~ /^HTTP\/1\.\d 503/
}, 5);
my $before = main::scrape();
main::fetch('GET', '/gone/1') for 1 .. 4;
my $after = main::scrape();
Test::More::is(main::value($after, main::gateway('unavailable'))
               - main::value($before, main::gateway('unavailable')), 4, '503s counted');
Test::More::cmp_ok(main::value($after, 'nginx_discovery_polls_total{service="gone",result="failure"}'),
                   '>=', 1, 'its failed polls');
Test::More::cmp_ok(main::value($after, 'nginx_discovery_polls_total{service="gone",result="success"}'),
                   '>=', 1, 'its good polls before');
--- request
GET /metrics
--- response_body_like: nginx_discovery_routes\{service="users"\} 2\n



=== TEST 6: a reload (HUP) keeps the counters; the routes go on counting into them
--- init
DiscoveryTest::wait_ready();
my $k = main::requests('users', '/users/{id:int}', 'GET', '2xx');
main::fetch('GET', '/users/1') for 1 .. 3;
my $before = main::value(main::scrape(), $k);
Test::More::cmp_ok($before, '>=', 3, 'counted before the reload');
my $rc = DiscoveryTest::reload_config(sub { $_[0] . "\n# reloaded\n" });
Test::More::is($rc, 'reloaded', 'reloaded');
Test::More::is(main::value(main::scrape(), $k), $before, 'kept over the reload');
main::fetch('GET', '/users/1') for 1 .. 2;
Test::More::is(main::value(main::scrape(), $k), $before + 2, 'counted on after it');
--- request
GET /metrics
--- response_body_like: nginx_discovery_table_routes 3\n



=== TEST 7: a restart (a new zone) starts the counters at zero; the blocks before counted
--- init
DiscoveryTest::wait_ready();
my $m = main::scrape();
Test::More::is(main::value($m, main::requests('users', '/users/{id:int}', 'GET', '2xx')), 0,
               'the route counted nothing since the start');
Test::More::is(main::value($m, main::gateway('not_found')), 0, 'no 404 since the start');
main::fetch('GET', '/users/1');
Test::More::is(main::value(main::scrape(), main::requests('users', '/users/{id:int}', 'GET', '2xx')), 1,
               'and counts from there');
--- request
GET /metrics
--- response_body_like eval
$main::NoOverflow



=== TEST 8: a gateway's answer that an error_page takes over is counted once
--- config
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        error_page 404 = /custom404;
    }
    location = /custom404 {
        return 404 "custom\n";
    }
    location = /_discovery {
        discovery_status;
    }
    location = /metrics {
        discovery_metrics;
    }
--- init
DiscoveryTest::wait_ready();
my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT};
my $before = main::value(main::scrape(), main::gateway('not_found'));
Test::More::like(main::fetch('GET', '/nope', $port), qr/^HTTP\/1\.1 404.*custom/s,
                 'the error_page answers');
main::fetch('GET', '/nope', $port) for 1 .. 2;
Test::More::is(main::value(main::scrape(), main::gateway('not_found')) - $before, 3,
               'each counted once');
--- request
GET /metrics
--- response_body_like eval
$main::NoOverflow



=== TEST 9: a routed request whose upstream answer an error_page takes over is counted on its route
--- config
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        proxy_intercept_errors on;
        error_page 418 = /teapot-page;
    }
    location = /teapot-page {
        return 503 "no tea\n";
    }
    location = /_discovery {
        discovery_status;
    }
    location = /metrics {
        discovery_metrics;
    }
--- init
DiscoveryTest::wait_ready();
my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT};
my $k = main::requests('users', '/teapot', 'GET', '5xx');
my $before = main::scrape();
Test::More::like(main::fetch('GET', '/teapot', $port), qr/^HTTP\/1\.1 503.*no tea/s,
                 'the error_page answers');
main::fetch('GET', '/teapot', $port);
main::fetch('GET', '/users/1', $port);
my $after = main::scrape();
Test::More::is(main::value($after, $k) - main::value($before, $k), 2,
               'counted on the route, with the status sent');
Test::More::is(main::value($after, main::requests('users', '/users/{id:int}', 'GET', '2xx'))
               - main::value($before, main::requests('users', '/users/{id:int}', 'GET', '2xx')),
               1, 'a request not redirected is counted once');
--- request
GET /metrics
--- response_body_like eval
$main::NoOverflow



=== TEST 10: routes the zone has no room for are counted as overflow, and an alert says so
--- http_config
    discovery_zone 1m;
    discovery_service many http://127.0.0.1:$TEST_NGINX_MANY_PORT interval=1s;
--- init
my $routes = join ",", map { qq({"path": "/o/$_", "methods": ["GET"]}) } 0 .. 2999;
DiscoveryTest::mock_service(port => $ENV{TEST_NGINX_MANY_PORT}, paths => {
    '/health?include_routes=true' => [{ body => qq({"routes": [$routes]}) }],
});
DiscoveryTest::wait_for('the 3000 routes', sub {
    main::value(main::scrape(), 'nginx_discovery_table_routes') == 3000;
}, 6);
# counted as the table's slots are assigned, which is before the table is
# installed: the requests need it installed (the status page's table)
DiscoveryTest::wait_status(qr{"/o/2999"}, 6);
my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT};
my $before = main::value(main::scrape(), main::overflow('no_slot'));
main::fetch('GET', '/o/0', $port);
main::fetch('GET', '/o/2999', $port) for 1 .. 3;
my $after = main::scrape();
Test::More::is(main::value($after, main::overflow('no_slot')) - $before,
               3, 'the last route has no slot: overflow, for want of room');
Test::More::is(main::value($after, main::requests('many', '/o/0', 'GET', '2xx')), 1,
               'the first has one');
--- request
GET /metrics
--- response_body_like: nginx_discovery_table_routes 3000\n
--- error_log eval
qr/\[alert\].*discovery zone "discovery" has no room for the counters of \d+ routes/
--- no_error_log
[emerg]
[crit]



=== TEST 11: bad buckets are refused, with file and line
--- config
    location = /metrics {
        discovery_metrics buckets=0.1,0.05;
    }
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\].*invalid buckets "0\.1,0\.05": bounds must increase in \S+nginx\.conf:\d+/



=== TEST 12: a bucket under a millisecond, or not a number, is refused
--- config
    location = /metrics {
        discovery_metrics buckets=0.0005;
    }
    location = /m2 {
        discovery_metrics buckets=1s;
    }
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\].*invalid buckets "0\.0005": not a whole number of milliseconds in \S+nginx\.conf:\d+/



=== TEST 13: two discovery_metrics with other buckets are refused: one set of counters
--- config
    location = /metrics {
        discovery_metrics buckets=0.1,1;
    }
    location = /m2 {
        discovery_metrics buckets=0.1,2;
    }
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\].*buckets "0\.1,2" differ from those of another "discovery_metrics" in \S+nginx\.conf:\d+/



=== TEST 14: an unknown parameter is refused
--- config
    location = /metrics {
        discovery_metrics bucket=1;
    }
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\].*invalid parameter "bucket=1" in \S+nginx\.conf:\d+/



=== TEST 15: discovery_metrics twice in a location is a duplicate
--- config
    location = /metrics {
        discovery_metrics;
        discovery_metrics;
    }
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\].*"discovery_metrics" directive is duplicate in \S+nginx\.conf:\d+/



=== TEST 16: discovery_metrics where discovery_route is on is never served
--- config
    location / {
        discovery_route on;
        discovery_metrics;
    }
--- must_die
--- no_error_log
[alert]
--- error_log eval
qr/\[emerg\].*"discovery_metrics" in a location with "discovery_route on" is never served in \S+nginx\.conf:\d+/



=== TEST 17: buckets= sets the histogram's bounds; other methods than GET and HEAD are refused
--- config
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery {
        discovery_status;
    }
    location = /metrics {
        discovery_metrics buckets=0.05,0.5,2.5;
    }
--- init
DiscoveryTest::wait_ready();
main::fetch('GET', '/users/1');
--- request eval
["GET /metrics", "POST /metrics"]
--- error_code eval
[200, 405]
--- response_body_like eval
[qr/route="\/users\/\{id:int\}",le="0\.05"\} \d+\n[^\n]+le="0\.5"\} \d+\n[^\n]+le="2\.5"\} \d+\n[^\n]+le="\+Inf"\} \d+\n/, qr/405/]

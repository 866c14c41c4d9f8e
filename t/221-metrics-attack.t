# discovery_metrics under attack: requests that end elsewhere than where
# they were routed, a zone that routes and counts, counted exactly.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use IO::Socket::INET;

no_shuffle();
no_root_location();
master_on();
workers(2);

$ENV{TEST_NGINX_MANY_PORT} = free_port();
$ENV{TEST_NGINX_CHURN_PORT} = free_port();
$ENV{TEST_NGINX_FULL_PORT} = free_port();
$ENV{TEST_NGINX_GONE_PORT} = free_port();
$ENV{TEST_NGINX_SLOW_PORT} = free_port();
$ENV{TEST_NGINX_ODD_PORT} = free_port();

our $HttpConfig = <<'_EOC_';
    discovery_service users http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 interval=1s;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        default_type application/json;
        location = /health {
            return 200 '{"routes": [
                {"path": "/boom", "methods": ["GET"]},
                {"path": "/deny", "methods": ["GET"]},
                {"path": "/ok", "methods": ["GET"]}]}';
        }
        location = /boom { return 500; }
        location = /deny { return 403; }
        location / { return 200 "users $uri\n"; }
    }
_EOC_

our $Config = <<'_EOC_';
    location / {
        discovery_route on;
        proxy_intercept_errors on;
        error_page 404 500 /oops.html;
        proxy_pass http://$discovery_upstream;
    }
    location = /oops.html {
        internal;
        return 200 "oops\n";
    }
    location = /_discovery {
        discovery_status;
    }
    location = /metrics {
        discovery_metrics;
    }
_EOC_

sub port { $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} }

# "STATUS body" of one request on a connection of its own
sub fetch {
    my ($path, $port) = @_;
    my $res = DiscoveryTest::http_get($port || port(), $path, 3) // '';
    my ($status) = $res =~ m{^HTTP/1\.\d (\d+)};
    my ($body) = $res =~ /\r\n\r\n(.*)/s;
    return ($status // 0) . ' ' . ($body // '');
}

sub scrape {
    my $res = DiscoveryTest::http_get(port(), '/metrics', 3) // '';
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
    return "nginx_discovery_requests_total{service=\"$service\","
           . "route=\"$route\",method=\"$method\",code=\"$code\"}";
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

=== TEST 1: an error_page does not make a routed request or the gateway's own answer vanish
--- init
DiscoveryTest::wait_ready();
Test::More::is(main::fetch('/boom'), "500 oops\n", 'the upstream 500 shows the error page');
Test::More::is(main::fetch('/boom'), "500 oops\n", 'twice');
Test::More::is(main::fetch('/nowhere'), "404 oops\n", 'the gateway 404 too');
Test::More::is(main::fetch('/ok'), "200 users /ok\n", 'a request without one');
my $m = main::scrape();
Test::More::is(main::value($m, main::requests('users', '/boom', 'GET', '5xx')), 2,
               'the 500s counted where they were routed');
Test::More::is(main::value($m, main::gateway('not_found')), 1,
               'the 404 counted as the gateway\'s');
Test::More::is(main::value($m, main::requests('users', '/ok', 'GET', '2xx')), 1,
               'the 200 counted');
Test::More::like($m, $main::NoOverflow, 'nothing overflowed');
--- request
GET /metrics
--- response_body_like: nginx_discovery_table_routes 3\n




=== TEST 2: the routes' counters leave the zone room for a table that grows: it is routed as without metrics
--- http_config
    discovery_zone 1m;
    discovery_service many http://127.0.0.1:$TEST_NGINX_MANY_PORT interval=1s;
--- init
sub doc { my $n = shift;
          '{"routes": [' . join(",", map { qq({"path": "/o/$_/{id}", "methods": ["GET"]}) } 0 .. $n - 1) . ']}' }
my ($small, $large) = (doc(12000), doc(15000));
DiscoveryTest::mock_service(port => $ENV{TEST_NGINX_MANY_PORT}, paths => {
    '/health?include_routes=true' => [({ body => $small }) x 3, { body => $large }],
});
DiscoveryTest::wait_for('the 12000 routes', sub {
    main::fetch('/o/11999/1') =~ /^200 /;
}, 8);
DiscoveryTest::wait_for('the 15000 routes', sub {
    main::fetch('/o/14999/1') =~ /^200 /;
}, 8);
my $status = DiscoveryTest::http_get(main::port(), '/_discovery', 3) // '';
Test::More::like($status, qr/"table_error":null/, 'no table refused');
--- request
GET /metrics
--- response_body_like: nginx_discovery_table_routes 15000\n
--- no_error_log
[emerg]
[crit]
is full



=== TEST 3: a subrequest's decision is its own: a request its auth_request denies, shown as an error page, counts where it was routed
--- config
    location / {
        discovery_route on;
        auth_request /auth;
        error_page 403 /oops.html;
        proxy_pass http://$discovery_upstream;
    }
    location = /auth {
        internal;
        discovery_route on;
        rewrite ^ /deny break;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
    location = /oops.html {
        internal;
        return 200 "oops\n";
    }
    location = /_discovery {
        discovery_status;
    }
    location = /metrics {
        discovery_metrics;
    }
--- init
DiscoveryTest::wait_ready();
Test::More::is(main::fetch('/ok'), "403 oops\n", 'denied by the subrequest');
my $m = main::scrape();
Test::More::is(main::value($m, main::requests('users', '/ok', 'GET', '4xx')), 1,
               'counted where it was routed');
Test::More::is(main::value($m, main::requests('users', '/deny', 'GET', '4xx')), 0,
               'not as its subrequest (not logged)');
--- request
GET /metrics
--- response_body_like: nginx_discovery_table_routes 3\n



=== TEST 4: routes a table change left without room get their slots once the routes it removed let theirs go
--- http_config
    discovery_zone 1m;
    discovery_service many http://127.0.0.1:$TEST_NGINX_CHURN_PORT interval=1s;
--- init
sub churn_doc { my $p = shift;
          '{"routes": [' . join(",", map { qq({"path": "/$p/$_", "methods": ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]}) } 0 .. 899) . ']}' }
DiscoveryTest::mock_service(port => $ENV{TEST_NGINX_CHURN_PORT}, paths => {
    '/health?include_routes=true' => [({ body => churn_doc('a') }) x 3, { body => churn_doc('b') }],
});
# under load, a table of 900 routes in a zone of 1m can take seconds
DiscoveryTest::wait_for('the first routes', sub { main::fetch('/a/899') =~ /^200 / }, 20);
DiscoveryTest::wait_for('the second routes', sub { main::fetch('/b/899') =~ /^200 / }, 20);
my $k = main::requests('many', '/b/899', 'GET', '2xx');
# the removed routes' slots are let go 10 s after their table (a wait of
# 16 s ran out once, beside other suites)
DiscoveryTest::wait_for('a slot for /b/899', sub {
    main::fetch('/b/899');
    main::value(main::scrape(), $k) > 0;
}, 30, sub {
    # on a timeout: each assignment of counters, and the overflow
    open my $log, '<', $Test::Nginx::Util::ErrLogFile or return undef;
    join "\n", (map { s/\s+$//r } grep { /counters of table|no room for the counters/ } <$log>),
         grep { /^nginx_discovery_(metrics_overflow_total|zone_bytes)/ }
              split /\n/, main::scrape();
});
--- request
GET /metrics
--- response_body_like: nginx_discovery_table_routes 900\n
--- no_error_log
[emerg]
[crit]



=== TEST 5: an error_page that sends a request to a routed location: each request counted once, by where it was routed first
--- config
    location / {
        discovery_route on;
        proxy_intercept_errors on;
        error_page 404 500 /ok;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery {
        discovery_status;
    }
    location = /metrics {
        discovery_metrics;
    }
--- init
DiscoveryTest::wait_ready();
Test::More::like(main::fetch('/boom'), qr/^500 users \/ok/, 'the 500 shows /ok');
Test::More::like(main::fetch('/nowhere'), qr/^404 users \/ok/, 'the 404 too');
my ($sum, @seen) = (0);
for (split /\n/, main::scrape()) {
    next unless /^nginx_discovery_(requests_total|gateway_responses_total)\{.*\} (\d+)$/;
    $sum += $2;
    push @seen, $_ if $2;
}
Test::More::is($sum, 2, 'two requests, two counts') or Test::More::diag(join "\n", @seen);
my $m = main::scrape();
Test::More::is(main::value($m, main::requests('users', '/boom', 'GET', '5xx')), 1,
               'the 500 where it was routed');
Test::More::is(main::value($m, main::gateway('not_found')), 1, 'the 404 as the gateway\'s');
--- request
GET /metrics
--- response_body_like: nginx_discovery_table_routes 3\n



=== TEST 6: a table the zone has no room for is not shown: the scrape's table is the one that routes
--- http_config
    discovery_zone 1m;
    discovery_max_size 8m;
    discovery_service many http://127.0.0.1:$TEST_NGINX_FULL_PORT interval=1s;
--- init
my $small = join ",", map { qq({"path": "/s/$_"}) } 0 .. 9;
my $large = join ",", map { qq({"path": "/large/route/number/$_/{id}", "methods": ["GET", "POST", "PUT", "DELETE"]}) } 0 .. 29999;
DiscoveryTest::mock_service(port => $ENV{TEST_NGINX_FULL_PORT}, paths => {
    '/health?include_routes=true' => [({ body => qq({"routes": [$small]}) }) x 2,
                                      { body => qq({"routes": [$large]}) }],
});
DiscoveryTest::wait_for('the small table', sub { main::fetch('/s/9') =~ /^200 / }, 8);
# the 30,000-route document is the third poll, then parsed and checked:
# seconds on a loaded host (it timed out at 12 s beside two benchmarks)
DiscoveryTest::wait_status(qr/does not fit in discovery zone/, 30);
Test::More::like(main::fetch('/s/9'), qr/^200 /, 'the small table routes');
--- request
GET /metrics
--- response_body_like: nginx_discovery_routes\{service="many"\} 10\n.*nginx_discovery_table_routes 10\n
--- error_log eval
qr/\[alert\].*discovery zone "discovery" of \d+ bytes is full: a table of \d+ bytes was not published/
--- no_error_log
[emerg]
[crit]



=== TEST 7: a request that ends after a table change removed its route is an overflow of its own reason, not one of no slot (which says the zone is too small)
--- http_config
    discovery_service gone http://127.0.0.1:$TEST_NGINX_GONE_PORT interval=1s upstream=slow;
    upstream slow {
        server 127.0.0.1:$TEST_NGINX_SLOW_PORT;
    }
--- init
my $doc = sub { '{"routes": [' . join(",", map { qq({"path": "$_", "methods": ["GET"]}) } @_) . ']}' };
DiscoveryTest::mock_service(port => $ENV{TEST_NGINX_GONE_PORT}, paths => {
    '/health?include_routes=true' => [({ body => $doc->('/gone/{id}', '/stays') }) x 2,
                                      { body => $doc->('/stays') }],
});
DiscoveryTest::mock_service(port => $ENV{TEST_NGINX_SLOW_PORT}, paths => {
    '/gone/slow' => [{ delay => 4, body => "late\n" }],
});
DiscoveryTest::wait_for('the first routes', sub { main::fetch('/gone/1') =~ /^200 / }, 8);
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => main::port(),
                              Proto => 'tcp', Timeout => 10) or die "connect: $!";
print $s "GET /gone/slow HTTP/1.0\r\nHost: localhost\r\n\r\n";
DiscoveryTest::wait_for('/gone/{id} removed', sub { main::fetch('/gone/1') =~ /^404 / }, 8);
my $res = do { local $/; <$s> } // '';
Test::More::like($res, qr{^HTTP/1\.\d 200 .*late}s, 'the slow request ended after its route went');
my $m = main::scrape();
Test::More::like($m, qr/^\Q@{[main::overflow('no_slot')]}\E 0$/m,
                 'no overflow for want of room: the zone had room for every route');
# and the fetches that a worker routed by its table of a moment before
Test::More::cmp_ok(main::value($m, main::overflow('route_removed')), '>=', 1,
                   'counted as a request whose route was removed');
--- request
GET /metrics
--- response_body_like: nginx_discovery_routes\{service="gone"\} 1\n
--- no_error_log
[alert]
[emerg]
[crit]



=== TEST 8: a routed request answered with a status outside 100-599 has no class to count in: an overflow of reason "unknown", not lost
--- http_config
    discovery_service odd http://127.0.0.1:$TEST_NGINX_ODD_PORT interval=1s;

    server {
        listen 127.0.0.1:$TEST_NGINX_ODD_PORT;
        default_type application/json;
        location = /health {
            return 200 '{"routes": [{"path": "/odd", "methods": ["GET"]},
                                    {"path": "/fine", "methods": ["GET"]}]}';
        }
        location = /odd { return 999; }
        location / { return 200 "odd $uri\n"; }
    }
--- init
DiscoveryTest::wait_ready();
Test::More::like(main::fetch('/odd'), qr/^999 /, 'the service\'s 999 passed on');
Test::More::like(main::fetch('/odd'), qr/^999 /, 'twice');
Test::More::like(main::fetch('/fine'), qr/^200 /, 'and a 200');
my $m = main::scrape();
Test::More::is(main::value($m, main::overflow('unknown')), 2, 'the 999s counted as unknown');
Test::More::is(main::value($m, main::overflow('no_slot')), 0, 'not as routes with no room');
Test::More::is(main::value($m, main::overflow('route_removed')), 0, 'nor removed');
Test::More::is(main::value($m, main::requests('odd', '/fine', 'GET', '2xx')), 1,
               'the 200 where it belongs');
--- request
GET /metrics
--- response_body_like: nginx_discovery_metrics_overflow_total\{reason="unknown"\} 2\n
--- no_error_log
[alert]
[emerg]
[crit]

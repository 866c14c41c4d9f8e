# Polls are spread over the interval: many services do not poll in bursts,
# also while other polls hang until their timeout.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

no_shuffle();
no_root_location();

my $services = 20;
my $hanging = 5;

$ENV{TEST_NGINX_HANG_PORT} = free_port();
mock_service(port => $ENV{TEST_NGINX_HANG_PORT},
             paths => { '/hang' => [ { hang => 1 } ] });

# $services answering services served by the test's own nginx, then
# $hanging ones that never answer; the answering ones' polls are logged
# with the time they arrived
sub services {
    my $conf = '';
    for my $i (1 .. $services) {
        $conf .= "    discovery_service s$i http://127.0.0.1:\$TEST_NGINX_RAND_PORT_1 uri=/s$i.json interval=1s;\n";
    }
    for my $i (1 .. $hanging) {
        $conf .= "    discovery_service h$i http://127.0.0.1:\$TEST_NGINX_HANG_PORT uri=/hang interval=1s timeout=2s;\n";
    }
    return $conf . <<'_EOC_';
    log_format poll escape=none "$msec";
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / {
            root html;
            access_log logs/polls.log poll;
        }
    }
_EOC_
}

sub user_files {
    return join '', map { ">>> s$_.json\n{\"routes\": [{\"path\": \"/s$_\"}]}\n" }
        1 .. $services;
}

# the times the answering services' polls arrived, from `from` seconds
# after the first poll on
sub poll_times {
    my $from = shift;
    my $log = Test::Nginx::Util::server_root() . "/logs/polls.log";
    open my $fh, '<', $log or return ();
    my @t = sort { $a <=> $b } map { chomp; $_ } <$fh>;
    return () unless @t;
    my $start = $t[0] + $from;
    return grep { $_ >= $start } @t;
}

# the largest number of polls that arrived within `window` seconds of one
# another, from `from` seconds after the first poll on
sub largest_burst {
    my ($window, $from) = @_;
    my @t = poll_times($from);
    my ($best, $j) = (0, 0);
    for my $i (0 .. $#t) {
        $j++ while $t[$i] - $t[$j] > $window;
        $best = $i - $j + 1 if $i - $j + 1 > $best;
    }
    return ($best, scalar @t);
}

use_defaults();

run_tests();

__DATA__

=== TEST 1: after the first round, polls do not come in bursts
The checks are in --- init: a burst is counted from the times in the poll
log, which no response of the gateway shows; the request is only there
because a block has one.
--- http_config eval: main::services()
--- user_files eval: main::user_files()
--- init
DiscoveryTest::wait_ready(undef, 8);
# three rounds of the 20 answering services after the first one, however
# long a loaded machine takes
Test::More::ok(DiscoveryTest::poll_until(sub { main::poll_times(1.5) >= 60 }, 15),
               "60 polls logged after the first round");
my ($burst, $polls) = main::largest_burst(0.010, 1.5);
# 25 services at 1s, 20 of them answering: one logged poll every 40 ms or
# so.  Bunched polls came 7 or more at a time; a loaded machine may delay
# a few.
Test::More::cmp_ok($burst, '<=', 4, "largest burst within 10 ms: $burst of $polls polls");
--- request
GET /nowhere
--- error_code: 404



=== TEST 2: the poll timers are logged as timers of no connection
nginx's debug log reads a timer's ev->data as a connection, for its fd:
the module's timers log -1, as the cache manager's, not a stray number.
The interval is rounded up to the next 16 ms tick.
--- log_level: debug
--- http_config
    discovery_service chat http://127.0.0.1:1 interval=7s;
--- config
    location = /t { return 200 ok; }
--- init
DiscoveryTest::wait_for('the poll timer in the debug log', sub {
    open my $fh, '<', $Test::Nginx::Util::ErrLogFile or return 0;
    local $/;
    return <$fh> =~ /event timer add: -1: 70(?:0\d|1[0-6]):/;
});
--- request
GET /t
--- response_body chomp
ok
--- error_log eval
qr/event timer add: -1: 70(?:0\d|1[0-6]):/



=== TEST 3: polls keep their connections to a backend between polls
400 services of one backend at interval=1s, 25 polls in a 16 ms tick:
libcurl's cache of idle connections is sized by the transfers in flight,
so a tick's last polls, done, closed the connections the next tick needed
(measured: about a fifth of 1,000 polls a second made a new connection).
The cache keeps as many as the polls a worker may have in flight.
--- http_config eval
my $conf = '';
for my $i (1 .. 400) {
    $conf .= "    discovery_service c$i http://127.0.0.1:\$TEST_NGINX_RAND_PORT_1 uri=/c?n=$i interval=1s;\n";
}
$conf . <<'_EOC_';
    discovery_zone 32m;
    log_format conn escape=none "$msec $connection_requests";
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 backlog=1024;
        keepalive_requests 100000;
        location = /c {
            access_log logs/conn.log conn;
            default_type application/json;
            return 200 '{"routes": [{"path": "/c$arg_n"}]}';
        }
    }
_EOC_
--- main_config
worker_rlimit_nofile 4096;
--- event_config
worker_connections 1024;
--- init
DiscoveryTest::wait_ready(undef, 15);
my $log = Test::Nginx::Util::server_root() . "/logs/conn.log";
my $lines = sub {
    open my $fh, '<', $log or return ();
    return map { [split] } <$fh>;
};
# three seconds of polls, from the second round on
my @all = $lines->();
my $from = @all ? $all[0][0] + 2.5 : 0;
Test::More::ok(DiscoveryTest::poll_until(
    sub { my @l = grep { $_->[0] >= $from } $lines->(); @l >= 1200 }, 20),
    "1,200 polls logged after the first rounds");
my @polls = grep { $_->[0] >= $from } $lines->();
my $new = grep { $_->[1] == 1 } @polls;
my $polls = @polls;
Test::More::cmp_ok($new, '<=', $polls / 100,
                   "$new of $polls polls on a new connection");
--- request
GET /nowhere
--- error_code: 404

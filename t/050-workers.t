# Several workers: one poll per service per interval, and a poller's death.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use File::Temp qw(tempdir);
use Time::HiRes qw(time);

master_on();
workers(2);
no_shuffle();
no_root_location();

my $dir = tempdir(CLEANUP => 1);
our $PollLog = "$dir/polls.log";
my $doc = '{"routes": [{"path": "/a/{id}", "methods": ["GET"]}]}';

$ENV{TEST_NGINX_MOCK_PORT} = free_port();

mock_service(
    port => $ENV{TEST_NGINX_MOCK_PORT},
    log => $PollLog,
    paths => {
        '/count' => [ { body => $doc } ],
        '/kill'  => [ { body => $doc } ],
    },
);

sub polls {
    my $path = shift;
    open my $fh, '<', $PollLog or return 0;
    return scalar grep { $_ eq "$path\n" } <$fh>;
}

# The times at which the test saw each of the next $n polls of $path,
# for up to $timeout seconds.
sub time_polls {
    my ($path, $n, $timeout) = @_;
    my $start = polls($path);
    my @seen;
    DiscoveryTest::poll_until(sub {
        my $now = polls($path) - $start;
        push @seen, time while @seen < $now;
        return @seen >= $n;
    }, $timeout);
    return @seen;
}

# Times six polls of /count at interval=1s: one process polling makes
# them five intervals apart, every worker polling would make two polls an
# interval.  The polls are waited for, not counted over a fixed time, so
# that a loaded machine does not fail the test.
sub count_polls {
    my @t = time_polls('/count', 6, 15);
    my $span = @t == 6 ? $t[-1] - $t[0] : 999;
    Test::More::diag(sprintf "6 polls with 2 workers and interval=1s: "
                     . "%.2f s from the first to the last", $span);
    Test::More::cmp_ok($span, '<=', 6.5, 'polls go on every interval');
    Test::More::cmp_ok($span, '>=', 3.5, 'one process polls per interval');
}

sub worker_pids {
    my $pidfile = Test::Nginx::Util::server_root() . "/logs/nginx.pid";
    open my $fh, '<', $pidfile or die "no pid file: $!";
    chomp(my $master = <$fh>);
    return grep { /^\d+$/ } split /\s+/, `pgrep -P $master`;
}

# Kills every worker with SIGKILL, polls in flight or not: the master
# starts new ones, which must take the polls over.  A poll in flight
# holds its lease for timeout= and 1 s more: with interval=1s and
# timeout=1s the next poll is due within 3 s.
sub kill_workers {
    DiscoveryTest::wait_ready();
    my @pids = worker_pids();
    Test::More::is(scalar @pids, 2, 'two workers');
    kill 'KILL', @pids;
    my $t0 = time;
    my $before = polls('/kill');
    my $resumed = DiscoveryTest::poll_until(sub { polls('/kill') > $before },
                                            10);
    my $took = time - $t0;
    Test::More::diag(sprintf "first poll %.2f s after SIGKILL of all workers",
                     $took);
    Test::More::ok($resumed, 'polls resume after the workers are killed');
    Test::More::cmp_ok($took, '<=', 6, 'within the lease and an interval');
}

# [start, end] of each poll the block's mock logged ("$msec $request_time
# $status"), by start, in milliseconds: the mock's own clock, per request
sub mock_polls {
    my $log = Test::Nginx::Util::server_root() . "/logs/mock.log";
    open my $fh, '<', $log or return ();
    my @polls;
    while (<$fh>) {
        my ($end, $took, $status) = split ' ';
        push @polls, { start => int($end * 1000 + 0.5) - int($took * 1000 + 0.5),
                       end => int($end * 1000 + 0.5), status => $status };
    }
    return sort { $a->{start} <=> $b->{start} } @polls;
}

# A poll that outlasts the interval: the other worker finds the next poll
# due while the first is still in flight, and must leave it to the lease.
# Waits until two polls are done (the second is a quick 304) and checks
# that none started before the one before it had ended.
sub one_poll_in_flight {
    my $deadline = time + 20;
    my @polls;
    until ((@polls = mock_polls()) >= 2 || time > $deadline) {
        sleep 0.05;
    }
    my $seen = join ', ', map { "$_->{status} [$_->{start}, $_->{end}]" } @polls;
    Test::More::cmp_ok(scalar @polls, '>=', 2, "two polls done: $seen");
    Test::More::cmp_ok($polls[0]{end} - $polls[0]{start}, '>', 1000,
                       'the first poll outlasts the interval');
    my $overlaps = grep { $polls[$_]{start} < $polls[$_ - 1]{end} } 1 .. $#polls;
    Test::More::is($overlaps, 0, "one poll in flight at a time: $seen");
}

use_defaults(no_error_log => undef);

run_tests();

__DATA__

=== TEST 1: with two workers, one poll per interval
The checks are in --- init: they time polls as they arrive at the mock,
which no response shows; the request checks that the routes are served.
--- http_config
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/count interval=1s;
--- init
main::count_polls();
--- request
GET /a/1
--- response_body
mock GET /a/1
--- no_error_log
[alert]
[emerg]
[crit]



=== TEST 2: killed workers cost no lock and no table
The checks are in --- init: killing the workers and timing the next poll
happen before the request, which checks that the table survived.
--- http_config
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/kill interval=1s timeout=1s;
--- init
main::kill_workers();
--- request
GET /a/2
--- response_body
mock GET /a/2
--- no_error_log
[emerg]
[crit]



=== TEST 3: a poll slower than the interval is not polled again by the other worker
--- http_config
    discovery_service s http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 uri=/slow.json interval=1s timeout=10s;

    log_format poll "$msec $request_time $status";
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /slow.json {
            root html;
            limit_rate 1000;
            access_log logs/mock.log poll;
        }
        location / {
            return 200 "mock $uri\n";
        }
    }
--- user_files eval
">>> slow.json\n" . '{"routes": [{"path": "/a/{id}", "methods": ["GET"]}]}'
. (" " x 3000) . "\n"
--- init
main::one_poll_in_flight();
--- request
GET /a/3
--- response_body
mock /a/3
--- no_error_log
[alert]
[emerg]
[crit]

# Faults around processes: graceful shutdown with a poll in flight, and
# reloads under traffic.  Plain Test::More: these tests signal nginx.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use File::Temp qw(tempdir);
use DiscoveryTest;

$ENV{TEST_NGINX_LOAD_MODULES}
    or plan skip_all => 'TEST_NGINX_LOAD_MODULES is not set';

my $mock = free_port();
my $log = tempdir(CLEANUP => 1) . '/polls.log';
mock_service(
    port => $mock,
    log => $log,
    paths => {
        '/hang' => [ { hang => 1 } ],
        '/doc'  => [ { body => '{"routes": [{"path": "/a/{id}", "methods": ["GET"]}]}' } ],
    },
);

sub error_log { my $n = shift; open my $fh, '<', "$n->{dir}/logs/error.log"
    or return ''; local $/; return <$fh> }

# A poll hangs for up to 30 s: a graceful shutdown must not wait for it.
{
    my $n = nginx_start(<<"_EOC_");
    discovery_service slow http://127.0.0.1:$mock uri=/hang timeout=30s;
    server { listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT; location / { discovery_route on; } }
_EOC_
    ok poll_until(sub { -s $log }, 5), 'the poll is in flight';

    my $t0 = time;
    kill 'QUIT', $n->{pid};
    my $gone = poll_until(sub { waitpid($n->{pid}, WNOHANG) == $n->{pid} }, 10);
    my $took = time - $t0;
    ok $gone, 'nginx exits on QUIT';
    diag sprintf "graceful shutdown with a 30 s poll in flight took %.3f s", $took;
    cmp_ok $took, '<', 2, 'a poll in flight does not hold up graceful shutdown';
    unlike error_log($n), qr/\[(alert|emerg|crit)\]/, 'no alert';
}

# Reload every 0.3 s while a client sends requests: none may get a routing
# error (404 or 503) or fail.
{
    my $n = nginx_start(<<"_EOC_");
    discovery_service s http://127.0.0.1:$mock uri=/doc interval=1s;
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        location / { discovery_route on; proxy_pass http://\$discovery_upstream; }
        location = /_discovery { discovery_status; }
    }
_EOC_
    ok poll_until(sub {
        my $r = http_get($n->{port}, '/a/0');
        defined $r && $r =~ m{^HTTP/1\.\d 200};
    }, 5), 'routing works before the reloads';

    pipe my $rd, my $wr or die "pipe: $!";
    my $client = fork;
    if ($client == 0) {
        close $rd;
        my %count;
        my $end = time + 4;
        my $i = 0;
        while (time < $end) {
            my $r = http_get($n->{port}, '/a/' . $i++);
            my ($code) = defined $r ? $r =~ m{^HTTP/1\.\d (\d+)} : ();
            $count{ $code || 'failed' }++;
        }
        print $wr join(' ', map { "$_=$count{$_}" } sort keys %count), "\n";
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;

    my $reloads = 0;
    my $end = time + 3.6;
    while (time < $end) {
        sleep 0.3;
        kill 'HUP', $n->{pid};
        $reloads++;
    }
    my $result = <$rd>;
    waitpid $client, 0;
    chomp $result;
    my %count = map { split /=/ } split ' ', $result;
    my $total = 0;
    $total += $_ for values %count;
    diag "$reloads reloads in 3.6 s under traffic: $total requests, $result";
    cmp_ok $total, '>', 100, 'the client made requests';
    is $total - ($count{200} || 0), 0, 'every request during reloads was routed';

    kill 'QUIT', $n->{pid};
    wait_for('nginx to exit on QUIT',
             sub { waitpid($n->{pid}, WNOHANG) == $n->{pid} }, 10);
    unlike error_log($n), qr/\[(alert|emerg|crit)\]/, 'no alert';
}

# A service's poll hangs for 30 s while another routes: requests must not
# wait for it.  Latency is compared with the same nginx once the hung poll
# is the only thing in flight and with a second worker to spare.
{
    my $n = nginx_start(<<"_EOC_", workers => 1);
    discovery_service s http://127.0.0.1:$mock uri=/doc;
    discovery_service slow http://127.0.0.1:$mock uri=/hang timeout=30s;
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        location / { discovery_route on; proxy_pass http://\$discovery_upstream; }
    }
_EOC_
    ok poll_until(sub {
        my $r = http_get($n->{port}, '/a/0');
        defined $r && $r =~ m{^HTTP/1\.\d 200};
    }, 5), 'the healthy service routes while the other poll hangs';

    my (@lat, $bad);
    for my $i (1 .. 300) {
        my $t0 = time;
        my $r = http_get($n->{port}, "/a/$i");
        push @lat, time - $t0;
        $bad++ unless defined $r && $r =~ m{^HTTP/1\.\d 200};
    }
    @lat = sort { $a <=> $b } @lat;
    diag sprintf "300 requests while a poll hangs (1 worker): "
        . "p50 %.2f ms, p99 %.2f ms, max %.2f ms",
        1000 * $lat[149], 1000 * $lat[296], 1000 * $lat[-1];
    ok !$bad, 'all routed';
    cmp_ok $lat[-1], '<', 0.5, 'no request waits for the hanging poll';

    kill 'QUIT', $n->{pid};
    wait_for('nginx to exit on QUIT',
             sub { waitpid($n->{pid}, WNOHANG) == $n->{pid} }, 10);
}

done_testing();

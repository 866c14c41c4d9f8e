# discovery_registry: a watch silent for timeout= has its member checked
# (a linearizable read, counted only); a member frozen meanwhile, which
# keeps the watch open and its kernel answering TCP keepalive, is left
# for the next.  A member that answers, or a watch that receives, is not.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use EtcdMock;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();

no_shuffle();
no_root_location();

# the registry's services are taken in by a reload, which the master does
master_process_enabled(1);

my $dir = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_LOG_DIR} = $dir;

# member(NAME, %opt): a mock etcd member on $ENV{TEST_NGINX_NAME_PORT},
# in a process group of its own, its pid in $main::member{NAME}: SIGSTOP
# to the group freezes it whole while its kernel still takes connections
# and answers keepalive.  Each request is answered by a process of its
# own and logged into DIR/NAME.log: its path, "/v3/kv/range count_only"
# for the check, and " auth=TOKEN" when it carried one.
#   range => BODY           the answer to a range read
#   watch => TEXT           the watch's messages, then silence, open
#   later => [BODY, TEXT]   instead, after the first read: what the
#                           member holds once the watch's events came
#   tick => SECONDS         then a progress notification that often
#   check => [STATUS, BODY] the answer to the check (200 by default)
#   token => TOKEN          /v3/auth/authenticate's; any other request
#                           without it is refused with 401
sub member {
    my ($name, %opt) = @_;
    my $port = free_port();
    $ENV{'TEST_NGINX_' . uc($name) . '_PORT'} = $port;

    my $listen = IO::Socket::INET->new(
        Listen => 64, LocalAddr => '127.0.0.1', LocalPort => $port,
        Proto => 'tcp', ReuseAddr => 1) or die "member: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid) {
        close $listen;
        $main::member{$name} = $pid;
        return;
    }

    setpgrp(0, 0);
    $SIG{PIPE} = 'IGNORE';
    $SIG{CHLD} = 'IGNORE';

    while (my $c = $listen->accept) {
        if (fork) { close $c; next }
        close $listen;

        my $req = '';
        while ($req !~ /\r\n\r\n/) {
            last unless sysread $c, $req, 4096, length $req;
        }
        if ($req =~ /^Content-Length:\s*(\d+)/mi) {
            my $want = index($req, "\r\n\r\n") + 4 + $1;
            while (length $req < $want) {
                last unless sysread $c, $req, $want - length $req,
                                    length $req;
            }
        }
        my ($path) = $req =~ m{^\S+ (\S+)};
        $path //= '?';
        $path .= ' count_only'
            if $path eq '/v3/kv/range' && $req =~ /"count_only":true/;
        my ($auth) = $req =~ /^Authorization:\s*(\S+)/mi;

        if (open my $fh, '>>', "$dir/$name.log") {
            print $fh $path, $auth ? " auth=$auth" : '', "\n";
            close $fh;
        }

        $c->autoflush(1);

        my ($status, $body) = (200, '');
        if ($path eq '/v3/auth/authenticate') {
            $body = '{"header":' . header(1) . qq(,"token":"$opt{token}"});
        } elsif ($opt{token} && ($auth // '') ne $opt{token}) {
            ($status, $body) = (401, '{"error":"etcdserver: invalid auth '
                . 'token","code":16,"message":"etcdserver: invalid auth token"}');
        } elsif ($path eq '/v3/kv/range count_only') {
            ($status, $body) = @{ $opt{check}
                                  // [200, '{"header":' . header(1) . '}'] };
        } elsif ($path eq '/v3/kv/range') {
            $body = $opt{later} && requests($name, qr{^/v3/kv/range$}) > 1
                    ? $opt{later}[0] : $opt{range};
        } elsif ($path eq '/v3/watch') {
            print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
                "Connection: close\r\n\r\n",
                $opt{later} && requests($name, qr{^/v3/watch$}) > 1
                ? $opt{later}[1] : $opt{watch};
            for (1 .. 100) {
                last unless $opt{tick};
                Time::HiRes::sleep($opt{tick});
                print $c '{"result":{"header":', header(3), '}}', "\n"
                    or POSIX::_exit(0);
            }
            sleep 60;
            POSIX::_exit(0);
        } else {
            ($status, $body) = (404, '{"error":"no such path"}');
        }

        print $c "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n",
            "Content-Length: ", length($body), "\r\nConnection: close\r\n\r\n",
            $body;
        POSIX::_exit(0);
    }
    POSIX::_exit(0);
}

# how many requests of a member's log match RE
sub requests {
    my ($name, $re) = @_;
    open my $fh, '<', "$dir/$name.log" or return 0;
    return scalar grep { /$re/ } <$fh>;
}

# the members and the requests they forked, process groups (stopped ones
# included: SIGKILL ends them all the same)
END { kill 'KILL', -$_ for values %main::member }

sub created { '{"result":{"header":' . header($_[0]) . ',"created":true}}' . "\n" }

# TEST 1: a member frozen once its watch runs; the next one, whose watch
# brings a service registered meanwhile
# (no service before: no reload, whose new worker would read and watch
# again, frozen or not)
member('frozen', range => range(5), watch => created(5));
member('next',
       range => range(6),
       watch => created(6) . '{"result":{"header":' . header(7)
                . ',"events":[{"kv":'
                . kv('after', '{"url":"http://127.0.0.1:2"}', 7) . '}]}}'
                . "\n",
       later => [ range(7, kv('after', '{"url":"http://127.0.0.1:2"}', 7)),
                  created(7) ]);

# TEST 2: a member that answers, idle
member('idle',
       range => range(3),
       watch => created(3));

# TEST 3: the same, with authentication
member('authed', token => 'tok.3',
       range => range(3),
       watch => created(3));

# TEST 4: a member that lost its quorum answers the check with etcd's
# error; the next answers
member('leaderless',
       range => range(3),
       watch => created(3),
       check => [503, '{"error":"etcdserver: request timed out","message":'
                      . '"etcdserver: request timed out","code":14}']);
member('after_leaderless', range => range(3), watch => created(3));

# TEST 5: a watch that receives a progress notification every 400 ms
member('busy', range => range(3), watch => created(3), tick => 0.4);

use_defaults(no_error_log => "[alert]\n[emerg]\n[crit]");

run_tests();

__DATA__

=== TEST 1: a member frozen while its watch is idle is left within twice timeout=, and the next member's changes are applied
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_FROZEN_PORT http://127.0.0.1:$TEST_NGINX_NEXT_PORT timeout=1s;
--- init
if (DiscoveryTest::wait_for("the watch on the first member", sub { main::requests('frozen', qr{^/v3/watch$}) == 1 })
    && DiscoveryTest::wait_status(qr/"state":"up","since":\d+,"endpoint":"http:\/\/127\.0\.0\.1:$ENV{TEST_NGINX_FROZEN_PORT}"/))
{
    my $reads = main::requests('frozen', qr{^/v3/kv/range$});  # its pages
    kill 'STOP', -$main::member{frozen};
    my $t0 = Time::HiRes::time();
    if (DiscoveryTest::wait_status(qr/"state":"up","since":\d+,"endpoint":"http:\/\/127\.0\.0\.1:$ENV{TEST_NGINX_NEXT_PORT}".*"name":"after","mod_revision":7/, 5)) {
        Test::More::diag(sprintf "left the frozen member, the next one's event applied: %.2f s",
                         Time::HiRes::time() - $t0);
    }
    DiscoveryTest::wait_status(qr/"name":"after","url":"[^"]*","upstream":"[^"]*","state":"[^"]*","drained":false,"origin":"registry"/, 5)
        and Test::More::diag(sprintf "and routed: %.2f s", Time::HiRes::time() - $t0);
    DiscoveryTest::wait_status(qr/"table_revision":7/, 5);

    # what it was asked while frozen, it reads once woken: the check, and
    # not the read of the reload's new worker, which began with the member
    # the last watcher was to try next
    kill 'CONT', -$main::member{frozen};
    DiscoveryTest::wait_for("the check logged", sub { main::requests('frozen', qr{count_only}) >= 1 });
    Time::HiRes::sleep(0.3);
    Test::More::is(main::requests('frozen', qr{count_only}), 1, 'one check of the frozen member');
    Test::More::is(main::requests('frozen', qr{^/v3/kv/range$}), $reads, 'no read of the frozen member since');
}
--- request
GET /_discovery
--- response_body_like: "registry":\{.*"state":"up","since":\d+,"endpoint":"http://127\.0\.0\.1:\d+","revision":7,"table_revision":7,"last_error":"the watch was silent and its member did not answer a check within 1000 ms","services_count":1
--- error_log eval
qr/\[error\].*discovery: registry at "http:\/\/127\.0\.0\.1:$ENV{TEST_NGINX_FROZEN_PORT}" failed: the watch was silent and its member did not answer a check within 1000 ms/
--- no_error_log
Operation timed out
[alert]
[emerg]
[crit]



=== TEST 2: a member that answers its checks keeps its watch: one check a timeout= while idle
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_IDLE_PORT timeout=1s;
--- init
if (DiscoveryTest::wait_for("the watch", sub { main::requests('idle', qr{^/v3/watch$}) == 1 })) {
    my $t0 = Time::HiRes::time();
    my $reads = main::requests('idle', qr{^/v3/kv/range$});  # its pages
    DiscoveryTest::wait_for("three checks", sub { main::requests('idle', qr{^/v3/kv/range count_only$}) >= 3 }, 6);
    my $took = Time::HiRes::time() - $t0;
    # each after a second of silence, the first a second after the watch
    Test::More::cmp_ok($took, '>=', 2.5, 'three checks take three timeout=');
    Test::More::is(main::requests('idle', qr{^/v3/watch$}), 1, 'one watch');
    Test::More::is(main::requests('idle', qr{^/v3/kv/range$}), $reads, 'no read since');
}
--- request
GET /_discovery
--- response_body_like: "state":"up","since":\d+,"endpoint":"http://127\.0\.0\.1:\d+","revision":3,"table_revision":3,"last_error":null
--- no_error_log
discovery: registry at
[alert]
[emerg]



=== TEST 3: user= and password=: the check carries the token, and the watch is kept
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_AUTHED_PORT timeout=1s user=gw password=s3cret;
--- init
if (DiscoveryTest::wait_for("two checks", sub { main::requests('authed', qr{^/v3/kv/range count_only}) >= 2 }, 6)) {
    Test::More::is(main::requests('authed', qr{^/v3/kv/range count_only auth=tok\.3$}), main::requests('authed', qr{^/v3/kv/range count_only}), 'every check with the token');
    Test::More::is(main::requests('authed', qr{^/v3/watch}), 1, 'one watch');
    Test::More::is(main::requests('authed', qr{^/v3/auth/authenticate}), 1, 'one authentication');
}
--- request
GET /_discovery
--- response_body_like: "state":"up","since":\d+,"endpoint":"http://127\.0\.0\.1:\d+","revision":3,"table_revision":3,"last_error":null
--- no_error_log
discovery: registry at
[alert]
[emerg]



=== TEST 4: a member that answers its check with etcd's error (no quorum) is left, said with etcd's reason
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_LEADERLESS_PORT http://127.0.0.1:$TEST_NGINX_AFTER_LEADERLESS_PORT timeout=1s;
--- init
DiscoveryTest::wait_for("the next member's watch", sub { main::requests('after_leaderless', qr{^/v3/watch$}) == 1 }, 6)
    && DiscoveryTest::wait_status(qr/"state":"up","since":\d+,"endpoint":"http:\/\/127\.0\.0\.1:$ENV{TEST_NGINX_AFTER_LEADERLESS_PORT}"/);
--- request
GET /_discovery
--- response_body_like: "state":"up","since":\d+,"endpoint":"http://127\.0\.0\.1:\d+","revision":3,"table_revision":3,"last_error":"the watch was silent and its member failed a check: etcd: \\"etcdserver: request timed out\\""
--- error_log eval
qr/\[error\].*discovery: registry at "http:\/\/127\.0\.0\.1:$ENV{TEST_NGINX_LEADERLESS_PORT}" failed: the watch was silent and its member failed a check: etcd: "etcdserver: request timed out"/



=== TEST 5: a watch that receives is not checked
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_BUSY_PORT timeout=1s;
--- init
if (DiscoveryTest::wait_for("the watch", sub { main::requests('busy', qr{^/v3/watch$}) == 1 })) {
    sleep 3;
    Test::More::is(main::requests('busy', qr{count_only}), 0, 'no check');
    Test::More::is(main::requests('busy', qr{^/v3/watch$}), 1, 'one watch');
}
--- request
GET /_discovery
--- response_body_like: "state":"up","since":\d+,"endpoint":"http://127\.0\.0\.1:\d+","revision":3,"table_revision":3,"last_error":null
--- no_error_log
discovery: registry at
[alert]
[emerg]

# discovery_registry against a hostile or broken etcd, hostile service
# documents and planted files beside the state file: no worker dies,
# nothing is half applied, no file is written through a link, and every
# refusal says why.
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
chmod 0755, $dir;
$ENV{TEST_NGINX_DIR} = $dir;
$ENV{TEST_NGINX_DEAD_PORT} = free_port();
$ENV{TEST_NGINX_HOSTILE_PORT} = free_port();
$ENV{TEST_NGINX_COMPACT_PORT} = free_port();
$ENV{TEST_NGINX_SAVE_PORT} = free_port();

sub slurp { open my $fh, '<', shift or return undef; local $/; <$fh> }

# TEST 1: documents no gateway may take, beside one it may
my $deep = '[' x 1_000_000 . ']' x 1_000_000;
mock_service(
    port => $ENV{TEST_NGINX_HOSTILE_PORT},
    paths => {
        '/v3/kv/range' => [ { body => range(5,
            kv('deep', qq({"url":"http://127.0.0.1:1","prefix":$deep}), 2),
            kv('crlf', '{"url":"http://127.0.0.1:1","uri":"/h\r\nX-A: b"}', 3),
            kv('space', '{"url":"http://127.0.0.1:1","prefix":["/a b"]}', 4),
            kv('ok', '{"url":"http://127.0.0.1:1"}', 5)) } ],
        '/v3/watch' => [ { hang => 1 } ],
    },
);

# TEST 2: every watch is compacted, however new the read before it
mock_service(
    port => $ENV{TEST_NGINX_COMPACT_PORT},
    log => "$dir/compact.log",
    bodies => "$dir/compact.bodies",
    paths => {
        '/v3/kv/range' => [
            { body => range(5, kv('a', '{"url":"http://127.0.0.1:1"}', 4)) } ],
        '/v3/watch' => [
            { body => '{"result":{"header":' . header(5) . ',"created":true}}'
                . "\n" . '{"result":{"header":' . header(5)
                . ',"canceled":true,"compact_revision":"9","cancel_reason":'
                . '"mvcc: required revision has been compacted"}}' . "\n" } ],
    },
);

# TEST 3: a token as long as etcd's JWTs signed with RS512
$ENV{TEST_NGINX_LONG_TOKEN} = 'eyJhbGciOiJSUzUxMiJ9.' . ('x' x 900);
$ENV{TEST_NGINX_TOKEN_RANGE} = range(4, kv('authed', '{"url":"http://127.0.0.1:4"}', 4));
$ENV{TEST_NGINX_TOKEN_WATCH} = '{"result":{"header":' . header(4) . ',"created":true}}';

# TEST 4: a link planted where the registry's file was written through
mkdir "$dir/s4" or die;
open my $fh, '>', "$dir/s4/precious" or die;
print $fh "precious\n";
close $fh;
symlink "$dir/s4/precious", "$dir/s4/table.state.registry.tmp" or die;
mock_service(
    port => $ENV{TEST_NGINX_SAVE_PORT},
    paths => {
        '/v3/kv/range' => [
            { body => range(6, kv('saved', '{"url":"http://127.0.0.1:1"}', 6)) } ],
        '/v3/watch' => [ { hang => 1 } ],
    },
);

# TEST 5: the registry's file is a link to a valid one
mkdir "$dir/s5" or die;
open $fh, '>', "$dir/s5/elsewhere" or die;
print $fh qq(7\n{"linked":"{\\"url\\":\\"http://127.0.0.1:1\\"}"}\n);
close $fh;
symlink "$dir/s5/elsewhere", "$dir/s5/table.state.registry" or die;

# TEST 6: the registry's file cut short
mkdir "$dir/s6" or die;
open $fh, '>', "$dir/s6/table.state.registry" or die;
print $fh qq(7\n{"cut":"{\\"url\\":\\"http://127.);
close $fh;

# raw_server($port, $answer): a server of its own process group, that
# forks for each connection and calls $answer->($path, $socket) there
sub raw_server {
    my ($port, $answer) = @_;
    my $listen = IO::Socket::INET->new(
        Listen => 64, LocalAddr => '127.0.0.1', LocalPort => $port,
        Proto => 'tcp', ReuseAddr => 1) or die "raw_server: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid) {
        close $listen;
        push @main::raw, $pid;
        return;
    }
    setpgrp(0, 0);
    $SIG{PIPE} = 'IGNORE';
    $SIG{CHLD} = 'IGNORE';
    while (my $c = $listen->accept) {
        my $req = '';
        while ($req !~ /\r\n\r\n/) {
            last unless sysread $c, $req, 4096, length $req;
        }
        my ($path) = $req =~ m{^\S+ (\S+)};
        $path //= '';
        if (fork) { close $c; next }
        close $listen;
        $c->autoflush(1);
        $answer->($path, $c);
        POSIX::_exit(0);
    }
    POSIX::_exit(0);
}

# the servers and the connections they forked, process groups
END { kill 'KILL', -$_ for @main::raw }

sub answer {
    my ($c, $body) = @_;
    print $c "HTTP/1.1 200 OK\r\nContent-Length: ", length($body),
        "\r\nConnection: close\r\n\r\n$body";
}

# TEST 8: a watch that sends half a message, then nothing
$ENV{TEST_NGINX_STALL_PORT} = free_port();
raw_server($ENV{TEST_NGINX_STALL_PORT}, sub {
    my ($path, $c) = @_;
    return answer($c, range(3)) if $path eq '/v3/kv/range';
    print $c "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
        '{"result":{"header":', header(3), ',"created":true}}', "\n",
        '{"result":{"header":', header(4), ',"events":[{"kv":';
    sleep 60;
});

# TEST 9: a watch that sends its headers, then nothing
$ENV{TEST_NGINX_MUTE_PORT} = free_port();
raw_server($ENV{TEST_NGINX_MUTE_PORT}, sub {
    my ($path, $c) = @_;
    return answer($c, range(3)) if $path eq '/v3/kv/range';
    print $c "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
    sleep 60;
});

# TEST 7: a service that flaps, registered and deleted every 10 ms, for
# 3 s from the first watch; the watch then stays open
$ENV{TEST_NGINX_FLAP_PORT} = free_port();
{
    my $listen = IO::Socket::INET->new(
        Listen => 64, LocalAddr => '127.0.0.1',
        LocalPort => $ENV{TEST_NGINX_FLAP_PORT}, Proto => 'tcp',
        ReuseAddr => 1) or die "flap: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid) {
        close $listen;
        $main::flap = $pid;
    } else {
        setpgrp(0, 0);
        $SIG{PIPE} = 'IGNORE';
        $SIG{CHLD} = 'IGNORE';
        my $key = b64('/nginx-discovery/services/flap');
        my $value = b64('{"url":"http://127.0.0.1:1"}');
        my ($t0, $rev) = (undef, 10);
        while (my $c = $listen->accept) {
            my $req = '';
            while ($req !~ /\r\n\r\n/) {
                last unless sysread $c, $req, 4096, length $req;
            }
            my ($path) = $req =~ m{^\S+ (\S+)};
            $t0 //= Time::HiRes::time() if $path eq '/v3/watch';
            $rev += 1000;
            if (fork) { close $c; next }
            close $listen;
            $c->autoflush(1);
            if ($path ne '/v3/watch') {
                my $body = range($rev);
                print $c "HTTP/1.1 200 OK\r\nContent-Length: ",
                    length($body), "\r\nConnection: close\r\n\r\n$body";
                POSIX::_exit(0);
            }
            print $c "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
                '{"result":{"header":', header($rev), ',"created":true}}', "\n";
            for (my $i = 0; Time::HiRes::time() - $t0 < 3; $i++) {
                $rev++;
                my $ev = $i % 2
                    ? qq({"type":"DELETE","kv":{"key":"$key","mod_revision":"$rev"}})
                    : qq({"kv":{"key":"$key","value":"$value","mod_revision":"$rev"}});
                print $c '{"result":{"header":', header($rev), ',"events":[',
                    $ev, ']}}', "\n" or POSIX::_exit(0);
                Time::HiRes::sleep(0.01);
            }
            sleep 60;
            POSIX::_exit(0);
        }
        POSIX::_exit(0);
    }
}

# the server and the watches it forked, a process group
END { kill 'KILL', -$main::flap if $main::flap }

sub reloads {
    open my $fh, '<', $Test::Nginx::Util::ErrLogFile or return 0;
    return scalar grep { /reloading the configuration/ } <$fh>;
}

# TEST 10: the registry's file of another prefix; of this one
for my $t (['s10', '/other/', 'stale'], ['s11', '/nginx-discovery/', 'kept']) {
    my ($sub, $prefix, $name) = @$t;
    mkdir "$dir/$sub" or die;
    open my $fh, '>', "$dir/$sub/table.state.registry" or die;
    print $fh qq(7 $prefix\n{"$name":"{\\"url\\":\\"http://127.0.0.1:1\\"}"});
    close $fh;
}

# TEST 12: more services than the zone has room for
$ENV{TEST_NGINX_MANY_PORT} = free_port();
my $many = range(900, map {
    kv("svc$_", qq({"url":"http://127.0.0.1:1","prefix":["/svc$_"]}), $_ + 2)
} 1 .. 400);
raw_server($ENV{TEST_NGINX_MANY_PORT}, sub {
    my ($path, $c) = @_;
    return answer($c, $many) if $path eq '/v3/kv/range';
    print $c "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
        '{"result":{"header":', header(900), ',"created":true}}', "\n";
    sleep 60;
});

# TEST 13: a watch that closes in the middle of an event
$ENV{TEST_NGINX_CUT_PORT} = free_port();
mock_service(
    port => $ENV{TEST_NGINX_CUT_PORT},
    paths => {
        '/v3/kv/range' => [ { body => range(3) } ],
        '/v3/watch' => [ { reset => 1, body => '{"result":{"header":'
            . header(3) . ',"created":true}}' . "\n"
            . '{"result":{"header":' . header(4) . ',"events":[{"kv":'
            . kv('half', '{"url":"http://127.0.0.1:1"}', 4) . '}]}}'
            . "\n" . (' ' x 40) } ],
    },
);

# TEST 14: a member that answers 200 with a web page
$ENV{TEST_NGINX_HTML_PORT} = free_port();
mock_service(
    port => $ENV{TEST_NGINX_HTML_PORT},
    paths => {
        '/v3/kv/range' => [ { type => 'text/html',
            body => "<html><body>Welcome to nginx!</body></html>\n" } ],
    },
);

# TEST 15: a member whose connections are never made
$ENV{TEST_NGINX_BLACKHOLE_PORT} = blackhole_port();

use_defaults(no_error_log => "[alert]\n[emerg]\n[crit]");

run_tests();

__DATA__

=== TEST 1: a document nested a million deep, a uri with CRLF, a prefix with a space: each refused with its reason, the valid one taken, no worker dies
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_HOSTILE_PORT;
--- init
DiscoveryTest::wait_status(qr/"name":"ok","url":"[^"]*","upstream":"[^"]*","state":"[a-z]+","drained":false,"origin":"registry"/, 10);
--- request
GET /_discovery
--- response_body_like: "services_count":4,"services_valid":1,"services":\[\{"name":"crlf","mod_revision":3,"valid":false,"last_error":"service \\"crlf\\": invalid uri \\"/h\\\\r\\\\nX-A: b\\""\},\{"name":"deep","mod_revision":2,"valid":false,"last_error":"service \\"deep\\": the document is not valid JSON: nested deeper than 64"\},\{"name":"ok","mod_revision":5,"valid":true,"url":"http://127\.0\.0\.1:1"\},\{"name":"space","mod_revision":4,"valid":false,"last_error":"service \\"space\\": invalid prefix \\"/a b\\""\}\]
--- no_error_log
[alert]
[emerg]
[crit]
exited on signal



=== TEST 2: a member whose every watch is compacted: read again once, then a failure with backoff, not a loop
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_COMPACT_PORT;
--- init
DiscoveryTest::wait_for("the first read", sub { main::count_requests("$ENV{TEST_NGINX_DIR}/compact.log", "/v3/kv/range") >= 1 });
sleep 2;
# reads, not their pages: a read's first page is the one with no revision
my $n = do { open my $fh, '<', "$ENV{TEST_NGINX_DIR}/compact.bodies";
             scalar grep { m{^/v3/kv/range } && !/"revision"/ } <$fh> };
Test::More::cmp_ok($n, '<=', 10, "range reads in 2 s of compacted watches ($n)");
--- request
GET /_discovery
--- response_body_like: "last_error":"the watch was compacted again right after a read"
--- error_log eval
[qr/\[warn\].*discovery: the registry's revision 6 was compacted: reading it again/,
 qr/\[error\].*discovery: registry at "http:\/\/127\.0\.0\.1:\d+" failed: the watch was compacted again right after a read/]



=== TEST 3: a 900-byte token (etcd's JWT signed with RS512) is sent as it came
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 user=gw password=s3cret;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        default_type application/json;
        location = /v3/auth/authenticate {
            return 200 '{"header":{"revision":"4"},"token":"$TEST_NGINX_LONG_TOKEN"}';
        }
        location = /v3/kv/range {
            if ($http_authorization != "$TEST_NGINX_LONG_TOKEN") {
                return 401 '{"error":"etcdserver: invalid auth token","code":16,"message":"etcdserver: invalid auth token"}';
            }
            return 200 '$TEST_NGINX_TOKEN_RANGE';
        }
        location = /v3/watch {
            if ($http_authorization != "$TEST_NGINX_LONG_TOKEN") {
                return 401 '{"error":"etcdserver: invalid auth token","code":16,"message":"etcdserver: invalid auth token"}';
            }
            return 200 '$TEST_NGINX_TOKEN_WATCH';
        }
    }
--- init
DiscoveryTest::wait_status(qr/"table_revision":4,"last_error":"the watch ended"/);
--- request
GET /_discovery
--- response_body_like: "revision":4,"table_revision":\d+,"last_error":"the watch ended","services_count":1,"services_valid":1,"services":\[\{"name":"authed"
--- no_error_log
invalid auth token
too long
[alert]
[emerg]



=== TEST 4: a link planted at the registry's file's old temporary name is not written through
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_SAVE_PORT;
    discovery_state $TEST_NGINX_DIR/s4/table.state;
--- init
DiscoveryTest::wait_for("the registry's file", sub { !-l "$ENV{TEST_NGINX_DIR}/s4/table.state.registry" && (main::slurp("$ENV{TEST_NGINX_DIR}/s4/table.state.registry") // '') =~ /saved/ }, 10);
Test::More::is(main::slurp("$ENV{TEST_NGINX_DIR}/s4/precious"), "precious\n", "the link's target is untouched");
Test::More::ok(-l "$ENV{TEST_NGINX_DIR}/s4/table.state.registry.tmp", "the link is left where it was");
--- request
GET /_discovery
--- response_body_like: "name":"saved","mod_revision":6,"valid":true



=== TEST 5: the registry's file is a link: not read, said
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_DEAD_PORT;
    discovery_state $TEST_NGINX_DIR/s5/table.state;
--- request
GET /_discovery
--- response_body_like: "services":\[\],"conflicts"
--- error_log eval
qr/\[warn\].*discovery: "\S+\/s5\/table\.state\.registry" not loaded: it is a symbolic link/
--- no_error_log
[alert]
[emerg]
"linked"



=== TEST 6: the registry's file cut short: not used, said, the rest of the configuration starts
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_DEAD_PORT;
    discovery_state $TEST_NGINX_DIR/s6/table.state;
--- request
GET /_discovery
--- response_body_like: "services":\[\],"conflicts"
--- error_log eval
qr/\[warn\].*discovery: the registry's services are not used: the registry's services is not valid JSON/
--- no_error_log
[alert]
[emerg]



=== TEST 7: a service that flaps every 10 ms for 3 s: a reload a second at most, and the gateway routes throughout
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_FLAP_PORT;
    discovery_service file http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 interval=1s;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /health {
            default_type application/json;
            return 200 '{"routes": [{"path": "/file/{id}", "methods": ["GET"]}]}';
        }
        location / {
            return 200 "file $uri\n";
        }
    }
--- config
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
    }
--- init
my $port = $ENV{TEST_NGINX_SERVER_PORT} || 1984;
DiscoveryTest::wait_for("the file's route", sub { (DiscoveryTest::http_get($port, '/file/1') // '') =~ m{^HTTP/1\.1 200 } });
DiscoveryTest::wait_for("the first reload", sub { main::reloads() >= 1 });
my ($ok, $failed) = (0, 0);
my $end = Time::HiRes::time() + 3.5;
while (Time::HiRes::time() < $end) {
    my $got = DiscoveryTest::http_get($port, '/file/1') // '';
    if ($got =~ m{^HTTP/1\.1 200 .*file /file/1}s) {
        $ok++;
    } else {
        Test::More::diag("failed: " . substr($got, 0, 300)) unless $failed++;
    }
    Time::HiRes::sleep(0.05);
}
my $n = main::reloads();
Test::More::cmp_ok($n, '<=', 6, "reloads while the service flapped 3 s ($n)");
Test::More::is($failed, 0, "requests failed while it flapped (of " . ($ok + $failed) . ")");
--- request
GET /file/1
--- response_body
file /file/1



=== TEST 8: a watch that stops halfway through a message fails after timeout=, said
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_STALL_PORT timeout=1s;
--- init
DiscoveryTest::wait_status(qr/"last_error":"the watch sent part of a message and nothing more for 1000 ms"/);
--- request
GET /_discovery
--- response_body_like: "revision":3,"table_revision":\d+,"last_error":"the watch sent part of a message and nothing more for 1000 ms"
--- error_log eval
qr/\[error\].*discovery: registry at "http:\/\/127\.0\.0\.1:\d+" failed: the watch sent part of a message and nothing more for 1000 ms/



=== TEST 9: a watch that is never created fails after timeout=, said
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_MUTE_PORT timeout=1s;
--- init
DiscoveryTest::wait_status(qr/"last_error":"the watch was not created within 1000 ms"/);
--- request
GET /_discovery
--- response_body_like: "revision":3,"table_revision":\d+,"last_error":"the watch was not created within 1000 ms"
--- error_log eval
qr/\[error\].*discovery: registry at "http:\/\/127\.0\.0\.1:\d+" failed: the watch was not created within 1000 ms/



=== TEST 10: the registry's file written for another prefix: not used, said
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_DEAD_PORT;
    discovery_state $TEST_NGINX_DIR/s10/table.state;
--- request
GET /_discovery
--- response_body_like: "services":\[\],"conflicts"
--- error_log eval
qr/\[warn\].*discovery: "\S+\/s10\/table\.state\.registry" holds the services of prefix "\/other\/", not "\/nginx-discovery\/": ignored/
--- no_error_log
[alert]
[emerg]
"stale"



=== TEST 11: the registry's file written for this prefix: served while etcd is down
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_DEAD_PORT;
    discovery_state $TEST_NGINX_DIR/s11/table.state;
--- request
GET /_discovery
--- response_body_like: "services":\[\{"name":"kept","url":"http://127\.0\.0\.1:1",.*"origin":"registry".*"table_revision":7,



=== TEST 12: a reload for the registry that nginx refuses (the zone is too small): said on the status page, not only in the master's log
--- http_config
    discovery_zone 128k;
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_MANY_PORT;
--- init
DiscoveryTest::wait_status(qr/"last_error":"the registry's services of revision 900 were not taken in/, 10);
--- request
GET /_discovery
--- response_body_like: "revision":900,"table_revision":0,"last_error":"the registry's services of revision 900 were not taken in: the reload asked for did not happen within 5 s \(see the error log\)","services_count":400,"services_valid":400
--- error_log eval
[qr/\[emerg\].*discovery zone "discovery" of 131072 bytes is too small for the table of the new configuration/,
 qr/\[warn\].*discovery: the registry's services of revision 900 were not taken in: the reload asked for did not happen within 5 s \(see the error log\)/]
--- no_error_log
[alert]
[crit]



=== TEST 13: a watch that closes in the middle of an event: nothing of it taken, the watch made again
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_CUT_PORT;
--- init
DiscoveryTest::wait_status(qr/"last_error":"the watch ended: transfer closed/);
--- request
GET /_discovery
--- response_body_like: "revision":3,"table_revision":\d+,"last_error":"the watch ended: transfer closed[^"]*","services_count":0,"services_valid":0,"services":\[\]
--- no_error_log
[alert]
[emerg]
"half"



=== TEST 14: a member that answers 200 with a web page: a clear error, nothing taken
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_HTML_PORT;
--- init
DiscoveryTest::wait_status(qr/"state":"down"/);
--- request
GET /_discovery
--- response_body_like: "state":"down",.*"revision":0,"table_revision":0,"last_error":"range read: the range answer is not valid JSON: [^"]+","services_count":0



=== TEST 15: a member whose connection is never made fails after timeout=, and its socket leaves epoll without an alert
libcurl 7.88 closes such a socket before it says CURL_POLL_REMOVE:
deleting the closed number from epoll logged "epoll_ctl(2, N) failed
(9: Bad file descriptor)".
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT timeout=200ms;
--- init
DiscoveryTest::wait_status(qr/"state":"down".*"last_error":"Connection timed out after \d+ milliseconds"/);
--- request
GET /_discovery
--- response_body_like: "state":"down",.*"revision":0,"table_revision":0,"last_error":"Connection timed out after \d+ milliseconds"
--- error_log eval
qr/\[error\].*discovery: registry at "http:\/\/127\.0\.0\.1:\d+" failed: Connection timed out after \d+ milliseconds/

# Reloads and starts with a zone that is nearly full: a new configuration
# is applied whole or not at all.  The table of service "big" takes more
# than half of the 64k zone, so that a second copy of it does not fit.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use File::Temp qw(tempdir);
use Time::HiRes ();

master_on();
workers(2);
no_shuffle();
no_root_location();

my $dir = tempdir(CLEANUP => 1);
our $PollLog = "$dir/polls.log";
$ENV{TEST_NGINX_STATE_DIR} = $dir;
$ENV{TEST_NGINX_MOCK_PORT} = free_port();

# about 22k: 6 of the zone's 15 pages, twice that is too much
our $BigRoutes = 660;

sub routes {
    my ($prefix, $n) = @_;
    return '{"routes": ['
        . join(',', map { qq({"path": "/$prefix/resource-number-$_/{id}"}) }
                    1 .. $n)
        . ']}';
}

# big answers its first poll with an error (each block has its own /bigN):
# its table is published after those of a and b, so that theirs never
# needs two copies of it
mock_service(
    port => $ENV{TEST_NGINX_MOCK_PORT},
    log => $PollLog,
    paths => {
        '/a'    => [ { body => '{"routes": [{"path": "/a/{id}"}]}' } ],
        '/b'    => [ { body => '{"routes": [{"path": "/b/{id}"}]}' } ],
        '/c'    => [ { body => '{"routes": [{"path": "/c/{id}"}]}' } ],
        (map { ("/big$_" => [ { status => 503 }, { body => routes('big', $BigRoutes) } ]) }
             1 .. 5),
        '/huge' => [ { body => routes('huge', 4000) } ],
        '/hang' => [ { hang => 1 } ],
    },
);

sub polls {
    my $path = shift;
    open my $fh, '<', $PollLog or return 0;
    return scalar grep { $_ eq "$path\n" } <$fh>;
}

our $Port = $ENV{TEST_NGINX_MOCK_PORT};

sub services {
    my $n = shift;
    return "    discovery_zone 64k;\n"
           . service_line('a', '/a') . service_line('b', '/b')
           . service_line('big', "/big$n");
}

# until big's table is published
sub wait_big {
    DiscoveryTest::wait_status(
        qr{"path":"/big/resource-number-$BigRoutes/\{id\}"}, 8);
}

# reloads with the services edited by $edit (a sub changing $_)
sub reload_services {
    my $edit = shift;
    return DiscoveryTest::reload_config(sub {
        local $_ = shift;
        $edit->();
        return $_;
    });
}

sub service_line {
    my ($name, $uri, $path) = @_;
    $path = defined $path ? "/$path" : '';
    return "    discovery_service $name http://127.0.0.1:$Port$path uri=$uri"
           . " interval=1s;\n";
}

# after a failed reload: the old services are still polled, and the
# status page still shows the old configuration
sub check_old_config {
    my %before = map { $_ => polls($_) } qw(/a /b);
    for my $path (qw(/a /b)) {
        Test::More::ok(DiscoveryTest::poll_until(
                           sub { polls($path) - $before{$path} >= 2 }, 10),
                       "$path is still polled");
    }
    my $port = $ENV{TEST_NGINX_SERVER_PORT};
    my $status = DiscoveryTest::http_get($port, '/_discovery') // '';
    Test::More::ok($status =~ /"name":"b"/ && $status !~ /"name":"new1"/,
                   'the status page shows the old services');
    for my $path ('/a/1', '/big/resource-number-7/1') {
        Test::More::like(DiscoveryTest::http_get($port, $path) // '',
                         qr/^HTTP\/1\.\d 200 .*mock GET \Q$path\E$/s,
                         "$path is routed");
    }
}

use_defaults();

run_tests();

__DATA__

=== TEST 1: a reload with the same configuration keeps the big table, no alert
--- http_config eval: main::services(1)
--- init
main::wait_big();
Test::More::is(main::reload_services(sub {}), 'reloaded', 'reloaded');
--- request eval
["GET /a/1", "GET /big/resource-number-7/1"]
--- response_body eval
["mock GET /a/1\n", "mock GET /big/resource-number-7/1\n"]



=== TEST 2: a service added by a reload is routed and on the status page
--- http_config eval: main::services(2)
--- init
main::wait_big();
Test::More::is(main::reload_services(sub {
    s{(discovery_service b .*\n)}{$1 . main::service_line('c', '/c')}e;
}), 'reloaded', 'reloaded');
Test::More::ok(DiscoveryTest::wait_status(qr{"name":"c".*"path":"/c/\{id\}"}),
               'c and its routes are on the status page');
--- request eval
["GET /c/2", "GET /big/resource-number-7/2"]
--- response_body eval
["mock GET /c/2\n", "mock GET /big/resource-number-7/2\n"]



=== TEST 3: a service removed by a reload is no longer routed
--- http_config eval: main::services(3)
--- init
main::wait_big();
Test::More::is(main::reload_services(sub {
    s{.*discovery_service b .*\n}{};
}), 'reloaded', 'reloaded');
--- request eval
["GET /b/3", "GET /a/3", "GET /big/resource-number-7/3"]
--- error_code eval
[404, 200, 200]



=== TEST 4: a reload whose services do not fit fails; the old configuration goes on
--- http_config eval: main::services(4)
--- init
main::wait_big();
Test::More::is(main::reload_services(sub {
    my $more = join '', map { main::service_line("new$_", '/hang') } 1 .. 40;
    s{.*discovery_service b .*\n}{$more};
}), 'failed', 'the reload removing b and adding 40 services fails');
main::check_old_config();
--- request
GET /b/4
--- response_body
mock GET /b/4
--- error_log eval
qr/\[emerg\].*discovery zone "discovery" of 65536 bytes is too small for the table of the new configuration \(\d+ bytes\)/
--- no_error_log
[alert]
[crit]



=== TEST 5: a reload whose table does not fit fails; the old configuration goes on
--- http_config eval: main::services(5)
--- init
main::wait_big();
# three services with URLs of 3000 bytes: their records fit, the table
# with their URLs does not
Test::More::is(main::reload_services(sub {
    my $more = join '', map { main::service_line("new$_", '/hang', 'x' x 3000) }
                        1 .. 3;
    s{(discovery_service b .*\n)}{$1$more};
}), 'failed', 'the reload adding 3 services fails');
main::check_old_config();
--- request
GET /b/5
--- response_body
mock GET /b/5
--- error_log eval
qr/\[emerg\].*discovery zone "discovery" of 65536 bytes is too small for the table of the new configuration \(\d+ bytes\)/
--- no_error_log
[alert]
[crit]



=== TEST 6: a table saved by a run with a larger zone
--- http_config
    discovery_zone 1m;
    discovery_state $TEST_NGINX_STATE_DIR/huge.state;
    discovery_service a http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/a;
    discovery_service huge http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/huge;
--- init
DiscoveryTest::wait_status(qr{"path":"/huge/resource-number-4000/\{id\}"});
# TEST 7 loads the state file this one leaves
DiscoveryTest::wait_for('the huge table in the state file', sub {
    open my $fh, '<', "$ENV{TEST_NGINX_STATE_DIR}/huge.state" or return 0;
    local $/;
    return index(<$fh>, '/huge/resource-number-4000/{id}') >= 0;
});
--- request
GET /huge/resource-number-7/5
--- response_body
mock GET /huge/resource-number-7/5



=== TEST 7: at start, a loaded table that does not fit is dropped, not the start
--- http_config
    discovery_zone 64k;
    discovery_state $TEST_NGINX_STATE_DIR/huge.state;
    discovery_service a http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/a;
    discovery_service huge http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=10s;
--- init
DiscoveryTest::wait_status(qr{"path":"/a/\{id\}"});
Test::More::like(
    DiscoveryTest::http_get($ENV{TEST_NGINX_SERVER_PORT},
                            '/huge/resource-number-7/6') // '',
    qr{^HTTP/1\.\d 503 }, 'the routes of the loaded table are not served');
--- request
GET /a/6
--- response_body
mock GET /a/6
--- error_log eval
qr/\[warn\].*discovery zone "discovery" of 65536 bytes is too small for the table loaded from ".*huge\.state" \(\d+ bytes\), started without its routes/



=== TEST 8: a start whose services alone do not fit fails
--- http_config eval
"    discovery_zone 64k;\n"
. join '', map { main::service_line("s$_", '/hang') } 1 .. 150
--- must_die
--- error_log eval
qr/\[emerg\].*discovery zone "discovery" of 65536 bytes is too small for the table of the new configuration \(\d+ bytes\)/
--- no_error_log
[alert]
[crit]

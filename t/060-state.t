# discovery_state: the table survives a restart, a damaged file does not
# stop nginx.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use File::Temp qw(tempdir);
use POSIX qw(mkfifo);
use Time::HiRes qw(sleep time);

no_shuffle();
no_root_location();

my $dir = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_STATE_DIR} = $dir;
$ENV{TEST_NGINX_MOCK_PORT} = free_port();

open my $fh, '>', "$dir/garbage.state" or die $!;
print $fh "NGXD" . ("\x01\xff" x 100);
close $fh;

# the table TEST 1 writes, seen through a symbolic link; and a FIFO, whose
# opening for reading would wait for a writer
symlink "$dir/table.state", "$dir/link.state" or die "symlink: $!";
mkfifo("$dir/fifo.state", 0600) or die "mkfifo: $!";

mock_service(
    port => $ENV{TEST_NGINX_MOCK_PORT},
    paths => {
        '/doc'  => [ { body => '{"routes": [{"path": "/a/{id}", "methods": ["GET"]}]}' } ],
        '/hang' => [ { hang => 1 } ],
        '/fail' => [ { status => 500, body => '{}' } ],
    },
);

# the generation in a state file's header: u64, little-endian, at 16
sub state_generation {
    my $path = shift;
    open my $fh, '<:raw', $path or return "none ($!)";
    my $n = read $fh, my $head, 32;
    return "none (a header of $n bytes)" unless $n == 32;
    my ($lo, $hi) = unpack 'V V', substr $head, 16, 8;
    return $hi * 2**32 + $lo;
}

sub status_generation {
    my $res = DiscoveryTest::http_get($ENV{TEST_NGINX_SERVER_PORT}, '/_discovery')
              || '';
    return $res =~ /"generation":\s*(\d+)/ ? $1 : "none in: $res";
}

# Waits until the state file holds the table the status page shows.
sub wait_state_saved {
    my $path = shift;
    my $deadline = time + 5;
    my ($file, $zone);
    do {
        sleep 0.05;
        ($file, $zone) = (state_generation($path), status_generation());
    } until ($file eq $zone || time > $deadline);
    Test::More::is($file, $zone, "$path holds the status page's table");
}

# Copies a state file with one bit of a route's path flipped: "/a/{id}"
# becomes "/c/{id}", still a valid table, which only the checksum tells
# from the one written.
sub flip_copy {
    my ($from, $to) = @_;
    open my $in, '<:raw', $from or die "$from: $!";
    my $data = do { local $/; <$in> };
    close $in;
    my @at;
    push @at, $-[0] while $data =~ m{/a/\{id\}}g;
    Test::More::is(scalar @at, 1, 'one route "/a/{id}" in the table')
        or return;
    substr($data, $at[0] + 1, 1) ^= "\x02";
    open my $out, '>:raw', $to or die "$to: $!";
    print $out $data;
    close $out;
}

# The router image file beside a state file: the generation of the table
# it is of, u64 at 16 of its header, once it holds that table's image.
sub wait_image_saved {
    my $path = shift;
    my $deadline = time + 5;
    my ($table, $image);
    do {
        sleep 0.05;
        ($table, $image) = (state_generation($path),
                            state_generation("$path.image"));
    } until ($table eq $image || time > $deadline);
    Test::More::is($image, $table, "$path.image is of the table in $path");
}

sub copy_file {
    my ($from, $to, $flip_last) = @_;
    open my $in, '<:raw', $from or die "$from: $!";
    my $data = do { local $/; <$in> };
    close $in;
    substr($data, -1, 1) ^= "\x01" if $flip_last;
    open my $out, '>:raw', $to or die "$to: $!";
    print $out $data;
    close $out;
}

use_defaults(no_error_log => undef);

run_tests();

__DATA__

=== TEST 1: a published table is written to the state file
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/table.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/doc;
--- init
DiscoveryTest::wait_ready();
--- request
GET /a/1
--- response_body
mock GET /a/1
--- no_error_log
[alert]
[emerg]
[error]



=== TEST 2: after a restart, routes are served before the first poll completes
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/table.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=10s;
--- request
GET /a/2
--- response_body
mock GET /a/2
--- error_log eval
qr/\[notice\].*discovery: table \d+ loaded from ".*table\.state"/
--- no_error_log
[alert]
[emerg]
[error]



=== TEST 3: restored services keep their health: fails= applies after a restart
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/table.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/fail interval=1s fails=3;
--- init
DiscoveryTest::wait_status(qr/"failures":\s*1/);
--- request eval
["GET /a/3", "GET /_discovery"]
--- response_body eval
["mock GET /a/3\n",
 qr/"name":"s".*"state":"healthy".*"failures":[12],.*"last_error":"HTTP status 500"/]
--- no_error_log
[alert]
[emerg]



=== TEST 4: a missing state file is a warning
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/missing.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=10s;
--- request
GET /a/4
--- error_code: 503
--- error_log eval
qr/\[warn\].*discovery: state file ".*missing\.state" not loaded/
--- no_error_log
[alert]
[emerg]



=== TEST 5: a corrupt state file is ignored with a warning
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/garbage.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=10s;
--- request
GET /a/4
--- error_code: 503
--- error_log eval
qr/\[warn\].*discovery: state file ".*garbage\.state" ignored/
--- no_error_log
[alert]
[emerg]



=== TEST 6: a symbolic link at the state path is not followed
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/link.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=10s;
--- request
GET /a/6
--- error_code: 503
--- error_log eval
qr/\[warn\].*discovery: state file ".*link\.state" not loaded: it is a symbolic link/
--- no_error_log
[alert]
[emerg]



=== TEST 7: a FIFO at the state path does not hang the start and is not read
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/fifo.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=10s;
--- request
GET /a/7
--- timeout: 5
--- error_code: 503
--- error_log eval
qr/\[warn\].*discovery: state file ".*fifo\.state" not loaded: not a regular file/
--- no_error_log
[alert]
[emerg]



=== TEST 8: the state file holds the table of the status page
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/source.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/doc;
--- init
Test::More::ok(DiscoveryTest::wait_status(qr{"path":\s*"/a/\{id\}"}),
               'the routes are published');
main::wait_state_saved("$ENV{TEST_NGINX_STATE_DIR}/source.state");
main::flip_copy("$ENV{TEST_NGINX_STATE_DIR}/source.state",
                "$ENV{TEST_NGINX_STATE_DIR}/flipped.state");
--- request
GET /a/8
--- response_body
mock GET /a/8
--- no_error_log
[alert]
[emerg]
[error]



=== TEST 9: a state file with one byte of its body flipped is ignored: checksum
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/flipped.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=10s;
--- request
GET /c/9
--- error_code: 503
--- response_body
{"detail": "Service discovery pending", "path": "/c/9"}
--- error_log eval
qr/\[warn\].*discovery: state file ".*flipped\.state" ignored: corrupt snapshot: checksum mismatch/
--- no_error_log
loaded from
[alert]
[emerg]



=== TEST 10: the table's router image is saved beside the state file
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/img.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/doc;
--- init
Test::More::ok(DiscoveryTest::wait_status(qr{"path":\s*"/a/\{id\}"}),
               'the routes are published');
my $d = $ENV{TEST_NGINX_STATE_DIR};
main::wait_state_saved("$d/img.state");
main::wait_image_saved("$d/img.state");
for my $copy (qw(damaged other)) {
    main::copy_file("$d/img.state", "$d/$copy.state");
    main::copy_file("$d/img.state.image", "$d/$copy.state.image",
                    $copy eq 'damaged');
}
--- request
GET /a/10
--- response_body
mock GET /a/10
--- no_error_log
[alert]
[emerg]
[error]



=== TEST 11: a restart takes the router image from its file, not building it
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/img.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=10s;
--- request
GET /a/11
--- response_body
mock GET /a/11
--- error_log eval
qr/\[notice\].*discovery: router image loaded from ".*img\.state\.image"/
--- no_error_log
not used
[alert]
[emerg]
[error]



=== TEST 12: a damaged router image file is passed over: the image is built
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/damaged.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=10s;
--- request
GET /a/12
--- response_body
mock GET /a/12
--- error_log eval
qr/\[notice\].*discovery: router image file ".*damaged\.state\.image" not used: checksum mismatch/
--- no_error_log
router image loaded
[alert]
[emerg]
[error]



=== TEST 13: another roster: the table is checked again and its image built
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/other.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=10s;
    discovery_service t http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=10s;
--- request
GET /a/13
--- response_body
mock GET /a/13
--- error_log eval
qr/\[notice\].*discovery: router image file ".*other\.state\.image" not used: the table is checked again/
--- no_error_log
router image loaded
[alert]
[emerg]
[error]

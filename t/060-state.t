# discovery_state: the table survives a restart, a damaged file does not
# stop nginx.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use File::Temp qw(tempdir);
use POSIX qw(mkfifo);

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
--- request
GET /a/3
--- response_body
mock GET /a/3
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

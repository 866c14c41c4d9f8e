# Self-test: repeat_each() with a plan, per-repeat error-log checks,
# TEST_NGINX_RAND_PORT_N, TEST_NGINX_SERVER_ROOT, and shutdown_error_log.
use FindBin;
use lib "$FindBin::Bin/lib";
use SelfTest;
use Test::Nginx::Socket;

repeat_each(2);
# 3 tests per block and repeat, +1 shutdown_error_log test, +2 below
plan tests => repeat_each() * 3 * blocks() + 1 + 2;

no_shuffle();
run_tests();

is($ENV{TEST_NGINX_SERVER_ROOT}, server_root(), 'TEST_NGINX_SERVER_ROOT is exported');
is(server_root(), $ENV{TEST_NGINX_SERVROOT}, 'TEST_NGINX_SERVROOT is honoured');

__DATA__

=== TEST 1: two random ports, distinct, and distinct from the server port
--- config
    location = /t {
        return 200 "$TEST_NGINX_RAND_PORT_1 $TEST_NGINX_RAND_PORT_2 $TEST_NGINX_RAND_PORT_1";
    }
--- request
GET /t
--- response_body_like: ^(\d+) (?!\1)(?!$ServerPort)\d+ \1$
--- no_error_log
[error]



=== TEST 2: each repeat sees only its own request in the error log
--- config
    location /x { root html; }
--- request
GET /x/nope.html
--- error_code: 404
--- response_body_like: 404 Not Found
--- grep_error_log: No such file or directory
--- grep_error_log_out
No such file or directory



=== TEST 3: shutdown_error_log is checked once nginx has stopped
--- config
    location = /t { return 200 "bye"; }
--- request
GET /t
--- response_body chomp
bye
--- no_error_log
(SIGQUIT) received
--- shutdown_error_log
(SIGQUIT) received

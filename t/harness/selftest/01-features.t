# Self-test of t/harness/Test/Nginx/Socket.pm: documented features that must
# pass, using stock nginx only.
use FindBin;
use lib "$FindBin::Bin/lib";
use SelfTest;
use IO::Socket::INET;
use Test::Nginx::Socket 'no_plan';

# a port that accepts connections but never answers, for the timeout tests
my $blackhole = IO::Socket::INET->new(
    Listen => 5, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp')
    or die "cannot listen: $!";
$ENV{TEST_NGINX_BLACKHOLE_PORT} = $blackhole->sockport;
$ENV{TEST_NGINX_GREETING} = 'hello from env';
our $init_ran = 0;

no_shuffle();
run_tests();

ok($init_ran, '--- init code ran');
is($ENV{TEST_NGINX_SERVER_PORT}, server_port(), 'server port exported');
isnt(server_port(), 1984, 'a free port was picked instead of 1984');
my $conf = do { local (@ARGV, $/) = server_root() . '/conf/nginx.conf'; <> };
like($conf, qr/^daemon off;$/m, 'nginx runs in the foreground');
like($conf, qr/^user root;$/m, 'user root when running as root') if $> == 0;
like($conf, qr{client_body_temp_path\s+\Q${\server_root()}\E/client_body_temp;}, 'temp paths under servroot');
like($conf, qr{^error_log \S+/logs/error\.log debug;$}m, 'error_log at debug');
unlike($conf, qr/load_module/, 'no module loaded in self-tests');

__DATA__

=== TEST 1: return, add_header, response_headers, absent header
--- config
    location = /t {
        add_header X-Foo bar;
        add_header X-Got "$http_x_mine";
        return 200 "hello\n";
    }
--- more_headers
X-Mine: mine
--- request
GET /t
--- response_headers
X-Foo: bar
X-Got: mine
!X-Absent
--- response_body
hello
--- no_error_log
[error]



=== TEST 2: request body gets Content-Length (trimmed), Host, Connection
--- config
    location = /len {
        return 200 "len=$http_content_length conn=$http_connection host=$http_host\n";
    }
--- request
POST /len
hello world

--- response_body
len=11 conn=close host=localhost



=== TEST 3: request eval array, error_code and response_body arrays
--- config
    location = /a { return 200 "a"; }
    location = /b { return 201 "b"; }
--- request eval
["GET /a", "GET /b"]
--- error_code eval
[200, 201]
--- response_body eval
["a", "b"]



=== TEST 4: pipelined requests
--- config
    location = /a { return 200 "a"; }
    location = /b { return 200 "b$http_connection"; }
--- pipelined_requests eval
["GET /a", "GET /b"]
--- response_body eval
["a", "bclose"]



=== TEST 5: raw_request
--- config
    location = /t { return 200 "raw $server_protocol $http_host"; }
--- raw_request eval
"GET /t HTTP/1.0\r\nHost: example.com\r\n\r\n"
--- response_body chomp
raw HTTP/1.0 example.com



=== TEST 6: chunked response is decoded
--- config
    location = /c {
        sub_filter_types *;
        sub_filter 'hello' 'world';
        return 200 "hello there\n";
    }
--- request
GET /c
--- response_headers
Transfer-Encoding: chunked
--- response_body
world there



=== TEST 7: TEST_NGINX_RAND_PORT_N in http_config and config, $ServerPort
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 200 "backend $server_port\n"; }
    }
--- config
    location = /p {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
    }
--- request
GET /p
--- response_body_like: ^backend (?!$ServerPort\n)\d+\n$



=== TEST 8: user_files, with env expansion
--- config
    location = /env { return 200 "$TEST_NGINX_GREETING"; }
--- user_files
>>> foo.txt
port=$TEST_NGINX_SERVER_PORT
--- request eval
["GET /foo.txt", "GET /env"]
--- response_body eval
["port=$ENV{TEST_NGINX_SERVER_PORT}\n", "hello from env"]



=== TEST 9: error_log and grep_error_log
--- config
    location /x { root html; }
--- request
GET /x/nope.html
--- error_code: 404
--- error_log eval
["No such file or directory", qr/open\(\) "[^"]+nope\.html" failed/]
--- grep_error_log eval
qr/open\(\) "[^"]+" failed/
--- grep_error_log_out eval
qq{open() "} . Test::Nginx::Socket::html_dir() . qq{/x/nope.html" failed\n}



=== TEST 10: no_error_log sees only this block's log
--- config
    location = /t { return 200 "ok"; }
--- request
GET /t
--- response_body chomp
ok
--- no_error_log eval
["No such file or directory", qr/\[error\]/]



=== TEST 11: must_die, error_log from nginx's start-up
--- config
    location = /t {
        bogus_directive 1;
    }
--- must_die
--- error_log eval
['[emerg]', 'unknown directive "bogus_directive"']
--- no_error_log
[alert]



=== TEST 12: must_die with an exit code
--- config
    location = /t {
        return a b c d;
    }
--- must_die: 1
--- error_log eval
['[emerg]', 'invalid number of arguments in "return" directive']



=== TEST 13: nginx runs again after must_die; init
--- config
    location = /t { return 200 "back\n"; }
--- init
$main::init_ran = 1;
--- request
GET /t
--- response_body
back



=== TEST 14: timeout with abort is not a failure
--- config
    location = /hang {
        proxy_read_timeout 2s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT;
    }
--- request
GET /hang
--- timeout: 300ms
--- abort
--- ignore_response



=== TEST 15: wait, response_headers_like, error_code_like, raw headers
--- config
    location = /r { return 302 /elsewhere; }
--- request
GET /r
--- wait: 0.05
--- error_code_like: ^30[12]$
--- response_headers_like
Location: http://localhost(:\d+)?/elsewhere
--- raw_response_headers_like: Location: http://localhost(?::\d+)?/elsewhere\r\n



=== TEST 16: skip_nginx
--- config
    location = /t { return 200 "x"; }
--- request
GET /t
--- response_body: never checked
--- skip_nginx
2: > 1.0.0



=== TEST 17: response_body_filters, commented request, HTTP/1.0
--- config
    location = /t { return 200 "Hello $server_protocol"; }
--- request
    # a comment before the request line
    GET /t HTTP/1.0
--- response_body_filters
uc
--- response_body chomp
HELLO HTTP/1.0



=== TEST 18: a request split into packets, with a delay
--- config
    location = /len { return 200 "len=$http_content_length"; }
--- request eval
[["POST /len\nhel", {value => "lo", delay_before => 0.05}]]
--- response_body chomp
len=5



=== TEST 19: more_headers per request, HEAD
--- config
    location = /h { return 200 "h=$http_x_h\n"; }
--- more_headers eval
["X-H: one", "X-H: two"]
--- request eval
["GET /h", "HEAD /h"]
--- response_headers eval
["Content-Length: 6", "Content-Length: 6"]
--- response_body eval
["h=one\n", ""]



=== TEST 20: error_log eval with a qr// and a string
--- config
    location = /t {
        set $v "value42";
        error_log logs/error.log debug;
        return 200 "$v";
    }
--- request
GET /t
--- response_body chomp
value42
--- error_log eval
[qr/http script (?:value|var)/, "http finalize request"]

# Hostile services: whatever a service answers, no worker crashes or
# blocks, the other service keeps routing, and last_error says why.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

no_shuffle();
no_root_location();

$ENV{TEST_NGINX_MOCK_PORT} = free_port();

my $good = '{"routes": [{"path": "/good/{id}"}]}';

# over 16 KB: parsed in a background thread, not on the event loop
my $big = '{"routes": [' . join(', ', map { qq({"path": "/big$_/{id}"}) } 0 .. 999)
    . ', {"path": "/big/{a"}]}';
my $big_truncated = substr($big, 0, 20000);

mock_service(
    port => $ENV{TEST_NGINX_MOCK_PORT},
    paths => {
        '/good'      => [ { body => $good } ],
        '/truncated' => [ { body => '{"routes": [{"path": "/x"' } ],
        '/deep'      => [ { body => '{"routes": ' . ('[' x 5000) . (']' x 5000) . '}' } ],
        '/types'     => [ { body => '{"status": 42, "routes": {}}' } ],
        '/utf8'      => [ { body => "{\"routes\": [{\"path\": \"/a\xff\xfe\"}]}" } ],
        '/nul'       => [ { body => "{\"routes\": [{\"path\": \"/a\0b\"}]}" } ],
        '/html'      => [ { body => '<html><body>Welcome</body></html>', type => 'text/html' } ],
        '/trickle'   => [ { body => $good, trickle => 0.2 } ],
        '/reset'     => [ { body => $good . (' ' x 10000), reset => 1 } ],
        '/big'       => [ { body => $big } ],
        '/big-truncated' => [ { body => $big_truncated } ],
        '/templates' => [ { body => '{"routes": [{"path": "/t/{a"}, {"path": "/t/{x:nope}"},
                            {"path": "/t/{p:path}/{q:path}"}, {"path": "no-slash"},
                            {"path": "/t/ok"}]}' } ],
    },
);

# every block: the hostile service "h" at uri=$path, beside a good one
sub hostile {
    my ($path, $extra) = @_;
    $extra //= '';
    return "    discovery_service good http://127.0.0.1:\$TEST_NGINX_MOCK_PORT uri=/good;\n"
        . "    discovery_service h http://127.0.0.1:\$TEST_NGINX_MOCK_PORT uri=$path timeout=1s $extra;\n";
}

use_defaults(
    request => "GET /good/1",
    response_body => "mock GET /good/1\n",
);

sub status_of_h {
    my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT};
    my $res = DiscoveryTest::http_get($port, '/_discovery');
    my ($h) = $res =~ /("name":"h".*)/s;
    return $h || '';
}

# waits until "h" was polled, then checks its last_error
sub expect_error {
    my $re = shift;
    DiscoveryTest::wait_ready(undef, 8);
    Test::More::like(status_of_h(), $re, "last_error of the hostile service");
}

run_tests();

__DATA__

=== TEST 1: truncated JSON
--- http_config eval: main::hostile('/truncated')
--- init
main::expect_error(qr/"state":"unhealthy".*"last_error":"invalid document: invalid JSON/);



=== TEST 2: nested 5000 levels deep
--- http_config eval: main::hostile('/deep')
--- init
main::expect_error(qr/"last_error":"invalid document: JSON nested deeper than 64 levels/);



=== TEST 3: wrong types
--- http_config eval: main::hostile('/types')
--- init
main::expect_error(qr/"state":"unhealthy".*"last_error":"invalid document: \\"status\\" is not a string"/);



=== TEST 4: invalid UTF-8
--- http_config eval: main::hostile('/utf8')
--- init
main::expect_error(qr/"last_error":"invalid document: invalid JSON[^"]*UTF-?8/);



=== TEST 5: a raw NUL byte
--- http_config eval: main::hostile('/nul')
--- init
main::expect_error(qr/"state":"unhealthy".*"last_error":"invalid document: invalid JSON/);



=== TEST 6: an HTML page
--- http_config eval: main::hostile('/html')
--- init
main::expect_error(qr/"state":"unhealthy".*"last_error":"invalid document: invalid JSON/);



=== TEST 7: a slow trickle past the timeout
--- http_config eval: main::hostile('/trickle')
--- init
main::expect_error(qr/"state":"unhealthy".*"last_error":"Operation timed out after \d+ milliseconds/);
--- error_log
poll of service "h"



=== TEST 8: a connection reset mid-body
--- http_config eval: main::hostile('/reset')
--- init
main::expect_error(qr/"state":"unhealthy".*"last_error":"[^"]*(closed|bytes remaining)/);



=== TEST 9: malformed templates are rejected and listed, the valid route kept
--- http_config eval: main::hostile('/templates')
--- init
main::expect_error(qr/"state":"healthy".*"routes":\[\{"path":"\/t\/ok"/);
--- error_log
rejected: route #0: invalid template "/t/{a"
rejected: route #1: invalid template
rejected: route #2: invalid template
rejected: route #3: invalid template



=== TEST 10: a document larger than the limit, stopped while reading
--- http_config eval: "    discovery_max_size 64k;\n" . main::hostile('/deep')
--- init
main::expect_error(qr/"state":"unhealthy".*"last_error":"invalid document/);



=== TEST 11: a large document (parsed in a thread): routed, its bad route logged
--- http_config eval: main::hostile('/big')
--- init
main::expect_error(qr/"state":"healthy"/);
--- request
GET /big999/7
--- response_body
mock GET /big999/7
--- error_log
rejected: route #1000: invalid template "/big/{a"



=== TEST 12: a large document cut short (parsed in a thread)
--- http_config eval: main::hostile('/big-truncated')
--- init
main::expect_error(qr/"state":"unhealthy".*"last_error":"invalid document: invalid JSON/);

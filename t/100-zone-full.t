# A table that does not fit the zone: not published, the previous one
# stays, one [alert] per change, and the status page says why.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

no_shuffle();
no_root_location();

$ENV{TEST_NGINX_MOCK_PORT} = free_port();

my $big = '{"routes": ['
    . join(',', map { qq({"path": "/big/resource-number-$_/{id}"}) } 1 .. 4000)
    . ']}';

mock_service(
    port => $ENV{TEST_NGINX_MOCK_PORT},
    paths => {
        '/small' => [ { body => '{"routes": [{"path": "/small/{id}"}]}' } ],
        '/big'   => [ { body => $big } ],
    },
);

use_defaults(no_error_log => "[emerg]\n[crit]");

run_tests();

__DATA__

=== TEST 1: the big table is refused, the small service keeps routing
--- http_config
    discovery_zone 64k;
    discovery_max_size 1m;
    discovery_service small http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/small interval=1s;
    discovery_service big http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/big interval=1s;
--- init
DiscoveryTest::wait_status(qr/"table_error":"a table of \d+ bytes does not fit in discovery zone \\"discovery\\" of 65536 bytes"/);
DiscoveryTest::wait_status(qr/"name":"small"[^\]]*"routes":\[\{"path":"\/small\/\{id\}"/);
--- request
GET /small/1
--- response_body
mock GET /small/1
--- wait: 2.5
--- grep_error_log eval: qr/discovery zone "discovery" of 65536 bytes is full/
--- grep_error_log_out
discovery zone "discovery" of 65536 bytes is full

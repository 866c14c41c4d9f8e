# The polls that finish close together are published as one table.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

no_shuffle();
no_root_location();

my $services = 20;

# $services services served by the test's own nginx: their first polls
# start together and finish within a few milliseconds of one another
sub services {
    my $conf = '';
    for my $i (1 .. $services) {
        $conf .= "    discovery_service s$i http://127.0.0.1:\$TEST_NGINX_RAND_PORT_1 uri=/s$i.json interval=30s;\n";
    }
    return $conf . <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { root html; }
    }
_EOC_
}

sub user_files {
    return join '', map { ">>> s$_.json\n{\"routes\": [{\"path\": \"/s$_\"}]}\n"
                          . ">>> s$_\nservice $_\n" } 1 .. $services;
}

# a service whose document gains a route at its second poll
my $grow = join ',', map { "{\"path\": \"/grow/r$_\"}" } 1 .. 30;
$ENV{TEST_NGINX_GROW_PORT} = DiscoveryTest::free_port();
DiscoveryTest::mock_service(
    port => $ENV{TEST_NGINX_GROW_PORT},
    paths => {
        '/grow' => [ { body => "{\"routes\": [$grow]}" },
                     { body => "{\"routes\": [$grow, {\"path\": \"/grow/new\"}]}" } ],
    },
);

use_defaults();

run_tests();

__DATA__

=== TEST 1: twenty services turning healthy at start make a few tables, not twenty
--- http_config eval: main::services()
--- user_files eval: main::user_files()
--- init
DiscoveryTest::wait_ready(undef, 8);
--- request
GET /_discovery
--- error_code: 200
--- response_body_like: ^(?!.*"state":\s*"(pending|unhealthy)").*"generation":\s*([1-9]|10)\b



=== TEST 2: every service's routes are in the table
--- http_config eval: main::services()
--- user_files eval: main::user_files()
--- init
DiscoveryTest::wait_ready(undef, 8);
--- request eval
["GET /s1", "GET /s20"]
--- error_code eval
[200, 200]
--- response_body eval
["service 1\n", "service 20\n"]



=== TEST 3: each table's stages are logged at debug level, its check only where routes changed
--- http_config eval: main::services()
--- user_files eval: main::user_files()
--- init
DiscoveryTest::wait_ready(undef, 8);
--- request
GET /s1
--- error_code: 200
--- error_log eval
[qr/discovery: (service "s\d+": )?table \d+ made in ms of thread CPU: decode \d+\.\d, check \d+\.\d \(the changed routes' subtrees, routes checked: \d+\), warnings \d+\.\d, encode \d+\.\d, router image \d+\.\d/,
 qr/discovery: (service "s\d+": )?table \d+ published in ms of thread CPU: copy out \d+\.\d, apply and router image \d+\.\d, metrics \d+\.\d, table copied and image written into the zone \d+\.\d, trim \d+\.\d/]



=== TEST 4: a route added to a document: the table's router image is patched from the previous one, not built again
--- http_config
    discovery_service grow http://127.0.0.1:$TEST_NGINX_GROW_PORT uri=/grow interval=1s;
--- init
DiscoveryTest::wait_status(qr{"/grow/new"}, 8);
--- request
GET /grow/new
--- error_code: 200
--- response_body
mock GET /grow/new
--- error_log eval
qr/discovery: (service "grow": )?table \d+ made in ms of thread CPU: .*router image \d+\.\d \(patched: 0 routes removed, 1 added, 1 terminals\)/

# The registry's read of its prefix in pages (issue 17): share=on values
# under PREFIX/routes/ that add up to more than one answer's 16 MB, a
# compaction between two pages, and a watch message over the old 4 MB;
# etcd is mocked as in t/234-share-attack.t, its range reads by
# EtcdMock::range_reads.  Each block fails on the code before the pages.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use EtcdMock;
use File::Temp qw(tempdir);

no_shuffle();
no_root_location();
master_process_enabled(1);

my $dir = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_LOG_DIR} = $dir;

my %answer = share_answers();
my $created = $answer{created};

# Another gateway (lease 4096) polls svc1 .. svc24 and wrote their routes:
# each value 1 MB (a route, and padding the route document parser skips),
# 32 MB in base64, twice what one answer may be.
our $services = 24;
my $padding = 'p' x (1000 * 1000);

sub value {
    my ($i, $version) = @_;
    return qq({"state":"healthy","version":"$version","padding":"$padding",)
         . qq("routes":[{"path":"/svc$i/shared","methods":["GET"]}]});
}

my %kvs;
for my $i (1 .. $services) {
    $kvs{"pollers/svc$i"} = ['1000', 5, 4096];
    $kvs{"routes/svc$i"} = [value($i, 7), 6, 4096];
}

# The watch, created, then a fragmented response (the events of
# revisions 7 and 8, cut inside 8) of 90,000 deletions of keys nobody
# has (6 MB: a message larger than the 4 MB the watch took) and svc1's
# new routes, then open for 30 s
my $deletions = join(',', map {
    '{"type":"DELETE","kv":{"key":"' . b64("/nginx-discovery/pollers/gone$_")
    . '","mod_revision":"7"}}' } 1 .. 90000);
my $burst = "$created\n"
    . '{"result":{"header":' . header(8) . ',"fragment":true,"events":['
    . "$deletions," . '{"type":"DELETE","kv":{"key":"'
    . b64('/nginx-discovery/pollers/gone0') . '","mod_revision":"8"}}]}}'
    . "\n" . '{"result":{"header":' . header(8) . ',"events":[{"kv":'
    . key('routes/svc1', value(1, 8), 8, 4096) . '}]}}' . "\n";

# TEST 4: a service's value of 12.6 MB, 16.8 MB in base64, over what one
# answer may be (an etcd whose --max-request-bytes is over 12 MB)
my $big = '{"url":"http://127.0.0.1:1","padding":"' . ('b' x (12600 * 1000)) . '"}';

my %etcd = (
    big => {
        '/v3/kv/range' => [ { handler => range_reads(rev => 6, kvs => {
            'services/big' => [$big, 5],
            'services/ok' => ['{"url":"http://127.0.0.1:'
                              . DiscoveryTest::free_port() . '"}', 6] }) } ],
        '/v3/watch' => [ { body => "$created\n", hold => 30 } ] },
    pages => {
        '/v3/kv/range' => [ { handler => range_reads(rev => 6, kvs => \%kvs) } ],
        '/v3/watch' => [ { body => "$created\n", hold => 30 } ] },
    compacted => {
        '/v3/kv/range' => [ { handler => range_reads(rev => 6, kvs => \%kvs,
                                                     compact_once => 1) } ],
        '/v3/watch' => [ { body => "$created\n", hold => 30 } ] },
    burst => {
        '/v3/kv/range' => [ { handler => range_reads(rev => 6, kvs => {
            map { ($_ => $kvs{$_}) } qw(pollers/svc1 routes/svc1) }) } ],
        '/v3/watch' => [ { body => $burst, hold => 30 } ] },
);

mock_share_pairs(
    etcd => \%etcd,
    dir => $dir,
);

# the bodies of the range reads etcd received
sub ranges {
    open my $fh, '<', "$ENV{TEST_NGINX_LOG_DIR}/$_[0].bodies" or return ();
    return grep { m{^/v3/kv/range } } <$fh>;
}

sub services_config {
    my ($name) = @_;
    my $port = $ENV{'TEST_NGINX_SVC_' . uc $name};
    return join '', map {
        "    discovery_service svc$_ http://127.0.0.1:$port interval=30s "
        . "prefix=/svc$_;\n" } 1 .. $services;
}

use_defaults(no_error_log => "[alert]\n[emerg]\n[crit]");

run_tests();

__DATA__

=== TEST 1: routes values of 32 MB in all are read in pages: the registry is up and every service's routes are applied (one read of the prefix answered more than 16 MB, and the registry was down on every gateway)
--- http_config eval
"    discovery_max_size 2m;
    discovery_registry etcd http://127.0.0.1:$ENV{TEST_NGINX_ETCD_PAGES} share=on;
" . main::services_config('pages')
--- init
DiscoveryTest::wait_status(qr/"name":"svc24".*"poller":\{"self":false,"lease":"1000"\}.*"version":"7".*"state":"up","since"/s, 20);
DiscoveryTest::wait_for("every service's routes", sub {
    my $page = DiscoveryTest::http_get($ENV{TEST_NGINX_SERVER_PORT} || 1984,
                                       '/_discovery') // '';
    my @shared = $page =~ /"poller":\{"self":false,"lease":"1000"\}/g;
    my @versions = $page =~ /"version":"7"/g;
    @shared == $main::services && @versions == $main::services }, 20);
my @ranges = main::ranges('pages');
Test::More::cmp_ok(scalar @ranges, '>', 6, 'the prefix is read in pages');
Test::More::diag(scalar(@ranges) . ' pages');
Test::More::ok(!(grep { !/"limit":"\d+"/ } @ranges), 'each with a limit');
--- request eval
["GET /svc1/shared", "GET /svc24/shared", "GET /_discovery"]
--- response_body_like eval
["^mock GET /svc1/shared\$", "^mock GET /svc24/shared\$", '"state":"up","since":\d+,"endpoint":"[^"]*","revision":\d+,"table_revision":\d+,"last_error":null']
--- no_error_log
[alert]
[emerg]
larger than



=== TEST 2: a compaction between two pages: the read begins again at once, and the registry is up with all the routes
--- http_config eval
"    discovery_max_size 2m;
    discovery_registry etcd http://127.0.0.1:$ENV{TEST_NGINX_ETCD_COMPACTED} share=on;
" . main::services_config('compacted')
--- init
DiscoveryTest::wait_status(qr/"name":"svc24".*"poller":\{"self":false,"lease":"1000"\}.*"version":"7".*"state":"up","since"/s, 20);
my @ranges = main::ranges('compacted');
my @first = grep { !/"revision"/ } @ranges;
Test::More::is(scalar @first, 2, 'the read began twice');
# and did not fail in between (the status page's last_error is null)
--- request eval
["GET /svc12/shared", "GET /_discovery"]
--- response_body_like eval
["^mock GET /svc12/shared\$", '"state":"up","since":\d+,"endpoint":"[^"]*","revision":\d+,"table_revision":\d+,"last_error":null']
--- no_error_log
[alert]
[emerg]
registry at



=== TEST 3: a watch message of 6 MB (a fragment of 90,000 deletions) and a revision cut between two fragments: taken, the registry stays up and applies the new routes (the watch refused a message over 4 MB and read everything again)
--- http_config eval
"    discovery_max_size 2m;
    discovery_registry etcd http://127.0.0.1:$ENV{TEST_NGINX_ETCD_BURST} share=on;
    discovery_service svc1 http://127.0.0.1:$ENV{TEST_NGINX_SVC_BURST} interval=30s prefix=/svc1;
"
--- init
DiscoveryTest::wait_status(qr/"poller":\{"self":false,"lease":"1000"\},"version":"8".*"state":"up","since":\d+,"endpoint":"[^"]*","revision":8,/s, 20);
my @watch = grep { m{^/v3/watch } } do {
    open my $fh, '<', "$ENV{TEST_NGINX_LOG_DIR}/burst.bodies"; <$fh> };
Test::More::is(scalar @watch, 1, 'one watch');
Test::More::like($watch[0], qr/"fragment":true/, 'asked in fragments');
--- request eval
["GET /svc1/shared", "GET /_discovery"]
--- response_body_like eval
["^mock GET /svc1/shared\$", '"state":"up","since":\d+,"endpoint":"[^"]*","revision":\d+,"table_revision":\d+,"last_error":null']
--- no_error_log
[alert]
[emerg]
registry at



=== TEST 4: a value of 16.8 MB in base64, more than one answer may be, alone: read without it and refused, said in the log and on the status page; the registry is up with the other service (the read failed, again and again)
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_BIG;
--- init
DiscoveryTest::wait_status(qr/"name":"ok","url":"[^"]*","upstream":"[^"]*","state":"[a-z]+","drained":false,"origin":"registry"/, 20);
my @keys_only = grep { m{^/v3/kv/range } && /"keys_only":true/ } do {
    open my $fh, '<', "$ENV{TEST_NGINX_LOG_DIR}/big.bodies"; <$fh> };
Test::More::cmp_ok(scalar @keys_only, '>=', 1, 'the key read alone, without its value');
--- request
GET /_discovery
--- response_body_like: "state":"up",.*"services_count":2,"services_valid":1,"services":\[\{"name":"big","mod_revision":5,"valid":false,"last_error":"service \\"big\\": its value is larger than an answer of etcd's this gateway reads \(16 MB\)"\},\{"name":"ok","mod_revision":6,"valid":true
--- error_log eval
qr{\[error\].*discovery: the value of the registry's key "/nginx-discovery/services/big" is larger than an answer of 16777216 bytes: read without it, as a value refused}
--- no_error_log
[alert]
[emerg]
registry at

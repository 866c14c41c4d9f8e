# discovery_registry share=on against mocks of etcd's JSON gateway: the
# gateway's lease, its claims, the routes it writes for the services it
# polls, those it applies for the others' and what it refuses of them
# (the fleet e2e runs it against real etcd and three gateways).
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use EtcdMock;
use File::Temp qw(tempdir);
use Time::HiRes ();

no_shuffle();
no_root_location();
master_process_enabled(1);

my $dir = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_LOG_DIR} = $dir;

my %answer = share_answers();
my ($txn, $created) = @answer{qw(txn created)};

# what this module writes for that document, polled by TEST 1's gateway
my $claim_svc = free_port();
our $value = '{"state":"healthy","url":"http://127.0.0.1:' . $claim_svc
          . '","version":"1","routes":'
          . '[{"path":"/svc/own","methods":["GET"]}]}';

my $other = '{"state":"healthy","version":"7","routes":['
          . '{"path":"/svc/shared","methods":["GET"]},'
          . '{"path":"/elsewhere","methods":["GET"]}]}';
my $down = '{"error":"etcdserver: no leader","code":14,'
         . '"message":"etcdserver: no leader"}';

# an etcd and a service for each block: NAME => {path => [answers]}
my %etcd = (
    # TEST 1: nobody polls svc: claimed, polled, its routes written once;
    # the watch ends each time, and each read after the first tells more
    claim => {
        '/v3/kv/range' => [ { body => range(5) },
            { body => range(6, key('pollers/svc', 'ff', 6, 255)) },
            { body => range(7, key('pollers/svc', 'ff', 6, 255),
                               key('routes/svc', $value, 7, 255)) } ],
        '/v3/watch' => [ { body => "$created\n" . '{"result":{"header":'
            . header(6) . ',"events":[{"kv":' . key('pollers/svc', 'ff', 6, 255)
            . '}]}}' . "\n" }, { body => $created } ] },
    # TEST 2: another gateway polls svc: its routes are applied, within
    # this gateway's prefix=, and svc is not polled
    # (after a reload, the new worker's read takes a second)
    other => {
        '/v3/kv/range' => [ map { { body => range(6,
            key('pollers/svc', '1000', 5, 4096),
            key('routes/svc', $other, 6, 4096)), delay => $_ } } 0, 1 ] },
    # TEST 3: a value that is not one: refused whole, said
    hostile => {
        '/v3/kv/range' => [ { body => range(6,
            key('pollers/svc', '1000', 5, 4096),
            key('routes/svc', '{"routes":[{"path":"/svc/planted"}]}', 6,
                4096)) } ] },
    # TEST 4: a claim bound to no lease is no claim: svc is polled here
    planted => {
        '/v3/kv/range' => [ { body => range(6, key('pollers/svc', 'me', 5)) } ] },
    # TEST 5: a claim whose gateway never writes routes: polled here too
    silent => {
        '/v3/kv/range' => [ { body => range(6,
            key('pollers/svc', '1000', 5, 4096)) } ] },
    # TEST 7: routes put by someone other than the claimant: not taken
    stray => {
        '/v3/kv/range' => [ { body => range(6,
            key('pollers/svc', '1000', 5, 4096),
            key('routes/svc', $other, 6)) } ] },
    # TEST 8: etcd refuses the routes (too large): said once, tried each second
    refused => {
        '/v3/kv/range' => [ { body => range(5) },
            { body => range(6, key('pollers/svc', 'ff', 6, 255)) } ],
        '/v3/watch' => [ { body => "$created\n" . '{"result":{"header":'
            . header(6) . ',"events":[{"kv":' . key('pollers/svc', 'ff', 6, 255)
            . '}]}}' . "\n" }, { body => $created } ],
        '/v3/kv/txn' => [ { body => $txn }, { status => 400, body =>
            '{"error":"etcdserver: request is too large","code":3,'
            . '"message":"etcdserver: request is too large"}' } ] },
    # TEST 9: this gateway's claim of a service it no longer has: given up
    orphan => {
        '/v3/kv/range' => [ { body => range(6,
            key('pollers/gone', 'ff', 5, 255),
            key('routes/gone', $value, 6, 255)) } ] },
    # TEST 10: the gateway that polls svc found it unhealthy
    unhealthy => {
        '/v3/kv/range' => [ { body => range(6,
            key('pollers/svc', '1000', 5, 4096),
            key('routes/svc', '{"state":"unhealthy","routes":[{"path":'
                . '"/svc/shared","methods":["GET"]}]}', 6, 4096)) } ] },
    # TEST 11: a gateway with share=off in a fleet that shares: polls svc
    # itself, reads none of the others' routes
    unshared => {
        '/v3/kv/range' => [ { handler => range_reads(rev => 6, kvs => {
            'pollers/svc' => ['1000', 5, 4096],
            'routes/svc' => [$other, 6, 4096] }) } ] },
    # TEST 12: svc's claimant's lease has under a second left (no "TTL"):
    # its gateway missed four keepalives, and the lease is revoked; two's
    # has a second (kept alive), mine is this gateway's own, theirs is a
    # service this gateway does not have
    dead => {
        '/v3/kv/range' => [ { body => range(6,
            key('pollers/svc', '1000', 5, 4096),
            key('routes/svc', $other, 6, 4096),
            key('pollers/two', '2000', 5, 8192),
            key('pollers/mine', 'ff', 5, 255),
            key('pollers/theirs', '3000', 5, 12288)) } ],
        '/v3/lease/timetolive' => [ { handler => sub {
            my ($id) = $_[0] =~ /"ID":"(\d+)"/;
            my $ttl = $id == 4096 ? '' : $id == 8192 ? ',"TTL":"1"'
                                                     : ',"TTL":"-1"';
            return { body => '{"header":' . header(6)
                     . qq(,"ID":"$id"$ttl,"grantedTTL":"3"}) } } } ],
        '/v3/lease/revoke' => [ { body => '{"header":' . header(7) . '}' } ] },
    # TEST 12: the same, kept alive (the default answer, 2 s left)
    alive => {
        '/v3/kv/range' => [ { body => range(6,
            key('pollers/svc', '1000', 5, 4096),
            key('routes/svc', $other, 6, 4096)) } ] },
    # TEST 6: etcd keeps the lease alive no more: svc is polled here
    lost => {
        '/v3/kv/range' => [ { body => range(6,
            key('pollers/svc', '1000', 5, 4096),
            key('routes/svc', $other, 6, 4096)) } ],
        '/v3/lease/keepalive' => [ { status => 503, body => $down } ] },
);

mock_share_pairs(
    etcd => \%etcd,
    dir => $dir,
    ports => { claim => $claim_svc },
);

# the request bodies etcd received
sub lines {
    open my $fh, '<', "$ENV{TEST_NGINX_LOG_DIR}/$_[0].bodies" or return ();
    return <$fh>;
}

sub polls { count_requests("$ENV{TEST_NGINX_LOG_DIR}/$_[0].polls",
                           '/health?include_routes=true') }

sub bodies {
    my ($name, $key) = @_;
    open my $fh, '<', "$ENV{TEST_NGINX_LOG_DIR}/$name.bodies" or return 0;
    my $k = b64("/nginx-discovery/$key");
    return scalar grep { index($_, $k) >= 0 } <$fh>;
}

use_defaults(no_error_log => "[alert]\n[emerg]\n[crit]");

run_tests();

__DATA__

=== TEST 1: nobody polls svc: claimed with the gateway's lease, polled, its routes written, and not again for polls that change nothing; two, whose claim etcd never shows, is claimed again, and not written
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_CLAIM share=on;
    discovery_service two http://127.0.0.1:$TEST_NGINX_SVC_CLAIM uri=/two prefix=/two;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_CLAIM interval=1s prefix=/svc;
--- init
DiscoveryTest::wait_for("the routes written",
                        sub { main::bodies('claim', 'routes/svc') >= 1 }, 10);
my $polls = main::polls('claim');
sleep 3.5;
Test::More::cmp_ok(main::polls('claim'), '>=', $polls + 3, 'svc is polled every second');
Test::More::is(main::bodies('claim', 'routes/svc'), 1, 'its routes written once');
Test::More::is(main::bodies('claim', 'pollers/svc'), 1, 'claimed once');
Test::More::cmp_ok(main::bodies('claim', 'pollers/two'), '>=', 2, 'two claimed again');
Test::More::is(main::bodies('claim', 'routes/two'), 0, 'two not written');
Test::More::ok((grep { index($_, EtcdMock::b64($main::value)) >= 0 }
                main::lines('claim')), 'the value is the route document');
Test::More::ok((grep { m{^/v3/lease/keepalive \{"ID":"255"\}} }
                main::lines('claim')), 'the lease is kept alive');
--- request
GET /_discovery
--- response_body_like: "name":"svc".*"poller":\{"self":true,"lease":"ff"\}.*"share":\{"ttl":3,"lease":"ff"\}



=== TEST 2: another gateway polls svc: not polled here, nor after a reload; its routes applied within this gateway's prefix=
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_OTHER share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_OTHER interval=1s prefix=/svc;
--- init
DiscoveryTest::wait_status(qr/"poller":\{"self":false,"lease":"1000"\}.*"version":"7"/, 10);
my $polls = main::polls('other');
sleep 2.5;
Test::More::is(main::polls('other'), $polls, 'svc is not polled');
Test::More::is(DiscoveryTest::reload_config(sub { $_[0] }), 'reloaded', 'a reload');
sleep 1.5;
Test::More::is(main::polls('other'), $polls, 'svc is not polled after a reload either');
Test::More::is(main::bodies('other', 'pollers/svc'), 0, 'nor claimed');
Test::More::is(main::bodies('other', 'routes/svc'), 0, 'nor written');
--- request eval
["GET /svc/shared", "GET /svc/own", "GET /elsewhere", "GET /_discovery"]
--- error_code eval
[200, 404, 404, 200]
--- response_body_like eval
["mock GET /svc/shared", "", "", '"name":"svc".*"state":"healthy".*"version":"7".*"last_error":null.*"routes":\[\{"path":"/svc/shared".*"rejected":\[\{"path":"/elsewhere","methods":\["GET"\],"reason":"outside prefix"']



=== TEST 3: a value that is not a service's routes: refused whole and said; svc keeps its own routes, or gets them by its own polls after the grace
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_HOSTILE share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_HOSTILE interval=1s timeout=1s prefix=/svc;
--- init
DiscoveryTest::wait_status(qr/"poller":\{"self":false.*"last_error":"the routes in the registry are not used: the routes' value has no ..state/, 10);
my $port = $ENV{TEST_NGINX_SERVER_PORT} || 1984;
Test::More::like(DiscoveryTest::http_get($port, '/svc/planted'), qr/^HTTP\/1\.\d 404/, 'none of the value is taken');
# its first poll here, if it reported before the claim was seen; else
# its polls here once the claimant wrote nothing taken for a grace
DiscoveryTest::wait_for("svc's own routes", sub {
    (DiscoveryTest::http_get($port, '/svc/own') // '') =~ /^HTTP\/1\.\d 200.*mock GET \/svc\/own/s }, 10);
--- request
GET /_discovery
--- response_body_like: "poller":\{"self":(true|false),"lease":"1000"\}
--- error_log eval
qr/\[error\].*discovery: the routes of service "svc" in the registry are not used: the routes' value has no "state"/



=== TEST 4: a claim bound to no lease is none: svc is polled here, and not claimed over it
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_PLANTED share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_PLANTED interval=1s prefix=/svc;
--- init
DiscoveryTest::wait_status(qr/"share":\{"ttl":3,"lease":"ff"\}/, 10);
my $polls = main::polls('planted');
sleep 2.2;
Test::More::cmp_ok(main::polls('planted'), '>=', $polls + 2, 'svc is polled here');
Test::More::is(main::bodies('planted', 'pollers/svc'), 0, 'not claimed');
--- request
GET /_discovery
--- response_body_like: "poller":\{"self":true,"lease":null\}



=== TEST 5: a claim whose gateway never writes routes: after an interval, a timeout and a TTL, svc is polled here too
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_SILENT share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_SILENT interval=1s timeout=1s prefix=/svc;
--- init
DiscoveryTest::wait_status(qr/"poller":\{"self":false,"lease":"1000"\}/, 10)
    && DiscoveryTest::wait_status(qr/"poller":\{"self":true,"lease":"1000"\}/, 10);
my $polls = main::polls('silent');
sleep 1.5;
Test::More::cmp_ok(main::polls('silent'), '>', $polls, 'svc is polled here');
--- request
GET /_discovery
--- response_body_like: "state":"healthy"
--- error_log eval
qr/\[warn\].*discovery: service "svc" is claimed by lease 1000, which wrote no routes for it that this gateway takes within 5000 ms: this gateway polls it too/



=== TEST 6: etcd keeps the gateway's lease alive no more: within the TTL, svc is polled here
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_LOST share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_LOST interval=1s prefix=/svc;
--- init
DiscoveryTest::wait_status(qr/"poller":\{"self":false,"lease":"1000"\}/, 10)
    && DiscoveryTest::wait_status(qr/"poller":\{"self":true,"lease":"1000"\}/, 5);
my $polls = main::polls('lost');
sleep 1.5;
Test::More::cmp_ok(main::polls('lost'), '>', $polls, 'svc is polled here');
--- request
GET /svc/own
--- response_body_like: ^mock GET /svc/own$
--- error_log eval
[qr/\[warn\].*discovery: the registry's lease: etcd: "etcdserver: no leader"; the services are polled by this gateway until it is kept alive/,
 qr/\[notice\].*discovery: service "svc" is polled by this gateway now/]



=== TEST 7: routes not bound to the claim's lease (anyone's put) are not taken
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_STRAY share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_STRAY interval=1s timeout=1s prefix=/svc;
--- init
DiscoveryTest::wait_status(qr/"poller":\{"self":false,"lease":"1000"\}/, 10);
my $port = $ENV{TEST_NGINX_SERVER_PORT} || 1984;
# its first poll here, or its polls here after the grace
DiscoveryTest::wait_for("svc's own routes", sub {
    (DiscoveryTest::http_get($port, '/svc/own') // '') =~ /^HTTP\/1\.\d 200/ }, 10);
--- request eval
["GET /svc/own", "GET /svc/shared"]
--- error_code eval
[200, 404]



=== TEST 8: etcd refuses the routes: said once, and tried again each second, not at every tick
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_REFUSED share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_REFUSED interval=1s prefix=/svc;
--- init
DiscoveryTest::wait_for("the routes written",
                        sub { main::bodies('refused', 'routes/svc') >= 1 }, 10);
sleep 3;
Test::More::cmp_ok(main::bodies('refused', 'routes/svc'), '<=', 5, 'tried about once a second');
--- request
GET /_discovery
--- response_body_like: "poller":\{"self":true,"lease":"ff"\}
--- error_log eval
qr/\[error\].*discovery: writing the routes of service "svc" in the registry failed: etcd: "etcdserver: request is too large"/



=== TEST 9: the gateway's claim of a service it no longer has (a reload took it out): given up, routes and all
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_ORPHAN share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_ORPHAN interval=1s prefix=/svc;
--- init
DiscoveryTest::wait_for("the claim given up",
                        sub { grep { /request_delete_range/ } main::lines('orphan') }, 10);
my ($txn) = grep { /request_delete_range/ } main::lines('orphan');
Test::More::like($txn, qr{^/v3/kv/txn .*"target":"LEASE","lease":"255"}, 'while the claim is the lease\'s');
Test::More::ok(index($txn, EtcdMock::b64('/nginx-discovery/pollers/gone')) > 0
               && index($txn, EtcdMock::b64('/nginx-discovery/routes/gone')) > 0, 'its claim and its routes');
DiscoveryTest::wait_for("svc claimed", sub { main::bodies('orphan', 'pollers/svc') >= 1 }, 5);
--- request
GET /_discovery
--- response_body_like: "share":\{"ttl":3,"lease":"ff"\}
--- error_log eval
qr/\[notice\].*discovery: the claim of service "gone", which this gateway no longer has, is given up/



=== TEST 10: another gateway found svc unhealthy: so is it here (503), with the routes it wrote
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_UNHEALTHY share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_UNHEALTHY interval=1s prefix=/svc;
--- init
# the value applied, and its table published (in a thread: under valgrind
# the record's state can come first)
DiscoveryTest::wait_status(qr/^(?=.*"state":"unhealthy")(?=.*"poller":\{"self":false,"lease":"1000"\})(?=.*"\/svc\/shared")/s, 10);
--- request eval
["GET /svc/shared", "GET /svc/own", "GET /_discovery"]
--- error_code eval
[503, 404, 200]
--- response_body_like eval
["", "", '"last_error":"unhealthy, as polled by another gateway"']



=== TEST 11: share=off in a fleet that shares: svc is polled here, though another gateway claims it; the others' routes are neither read nor applied
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_UNSHARED;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_UNSHARED interval=1s prefix=/svc;
--- init
DiscoveryTest::wait_status(qr/"name":"svc".*"state":"healthy"/, 10);
my $polls = main::polls('unshared');
sleep 2.2;
Test::More::cmp_ok(main::polls('unshared'), '>=', $polls + 2, 'svc is polled here');
my @reads = grep { m{^/v3/kv/range } } main::lines('unshared');
Test::More::cmp_ok(scalar @reads, '>=', 2, 'the prefix was read');
my $routes = EtcdMock::b64('/nginx-discovery/routes/');
Test::More::is(scalar(grep { index($_, qq("key":"$routes")) >= 0 } @reads), 0, 'not its routes/');
Test::More::is(scalar(grep { !m{^/v3/kv/range } && !m{^/v3/watch } } main::lines('unshared')), 0, 'nor anything but reads and the watch');
--- request eval
["GET /svc/own", "GET /svc/shared", "GET /_discovery"]
--- error_code eval
[200, 404, 200]
--- response_body_like eval
["mock GET /svc/own", "", '"share":null']



=== TEST 12: the leases of the others' claims are looked at: one with under a second left is revoked at once (its gateway missed four keepalives), one kept alive is not; this gateway's own is not looked at, nor the claimant of a service it does not have
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_DEAD share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_DEAD interval=1s prefix=/svc;
    discovery_service two http://127.0.0.1:$TEST_NGINX_SVC_DEAD interval=1s prefix=/two;
    discovery_service mine http://127.0.0.1:$TEST_NGINX_SVC_DEAD interval=1s prefix=/mine;
--- init
my $looked = sub { my $id = shift; scalar grep { m{^/v3/lease/timetolive \{"ID":"$id"\}$} } main::lines('dead') };
DiscoveryTest::wait_for('the dead lease revoked, the live one looked at twice',
                        sub { (grep { m{^/v3/lease/revoke \{"ID":"4096"\}} } main::lines('dead'))
                              && $looked->(8192) >= 2 }, 10);
Test::More::is(scalar(grep { m{^/v3/lease/revoke } && !m{"ID":"4096"} } main::lines('dead')), 0, 'only the dead lease revoked');
Test::More::is($looked->(255), 0, 'this gateway\'s own lease not looked at');
Test::More::is($looked->(12288), 0, 'nor the claimant of a service it does not have');
--- request
GET /_discovery
--- response_body_like: "poller":\{"self":false,"lease":"1000"\}
--- error_log eval
qr/\[notice\].*discovery: the registry's lease 1000 was not kept alive for 2 s: revoked, its services are claimed again/



=== TEST 13: a claimant's lease kept alive (etcd says 1 s, the least it says of one) is looked at about three times a second, never revoked
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_ALIVE share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_ALIVE interval=1s prefix=/svc;
--- init
DiscoveryTest::wait_status(qr/"poller":\{"self":false,"lease":"1000"\}/, 10);
my $looks = sub { scalar grep { m{^/v3/lease/timetolive \{"ID":"4096"\}} } main::lines('alive') };
my ($n, $at) = ($looks->(), Time::HiRes::time());
DiscoveryTest::wait_for('four more looks', sub { $looks->() >= $n + 4 }, 10);
my $took = Time::HiRes::time() - $at;
Test::More::cmp_ok($took, '>=', 0.6, "not more than about three a second ($took s)");
Test::More::cmp_ok($took, '<=', 2, "nor fewer than about two a second ($took s)");
Test::More::is(scalar(grep { m{^/v3/lease/revoke } } main::lines('alive')), 0, 'not revoked');
--- request
GET /svc/shared
--- response_body_like: ^mock GET /svc/shared$
--- no_error_log
revoked

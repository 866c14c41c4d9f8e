# share=on attacked as a hostile or broken peer, or an unlucky operator,
# would: each block is a defect an outside review found, and fails on the
# code before its fix; etcd is mocked as in t/233-registry-share.t.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use EtcdMock;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use MIME::Base64 ();

no_shuffle();
no_root_location();
master_process_enabled(1);

my $dir = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_LOG_DIR} = $dir;

my %answer = share_answers();
my ($alive, $created) = @answer{qw(alive created)};

# another gateway's (lease 4096) value for svc
my $other = '{"state":"healthy","version":"7","routes":['
          . '{"path":"/svc/shared","methods":["GET"]}]}';

# the same, with 200 routes more: about 8 KB
my $big = '{"state":"healthy","version":"7","routes":['
        . '{"path":"/svc/shared","methods":["GET"]}'
        . join('', map { qq(,{"path":"/svc/padding/$_","methods":["GET"]}) }
                   1 .. 200)
        . ']}';

# another gateway polls svc, and wrote its routes
my %claimed = ('/v3/kv/range' => [ { body => range(6,
    key('pollers/svc', '1000', 5, 4096),
    key('routes/svc', $other, 6, 4096)) } ]);


# the owner (lease 4096) dies: etcd deletes its claim and routes at
# revision 7, a while after this gateway's watch began; its claim loses the race to lease 8192's, which
# claims at 8 and writes its routes at 9
my $lost = '{"header":' . header(8) . ',"succeeded":false}';
my $newer = '{"state":"healthy","version":"8","routes":['
          . '{"path":"/svc/shared","methods":["GET"]}]}';
my $gone = "$created\n" . (' ' x 400) . '{"result":{"header":' . header(7) . ',"events":['
         . '{"type":"DELETE","kv":{"key":"' . b64('/nginx-discovery/pollers/svc')
         . '","mod_revision":"7"}},'
         . '{"type":"DELETE","kv":{"key":"' . b64('/nginx-discovery/routes/svc')
         . '","mod_revision":"7"}}]}}' . "\n";

# etcd's answer to an expired token (a JWT's lasts 5 minutes, however used)
my $expired = '{"error":"etcdserver: invalid auth token","code":16,'
            . '"message":"etcdserver: invalid auth token"}';

my %etcd = (
    # the token expires after the second keepalive: the watch, begun
    # before, runs on
    auth => {
        '/v3/auth/authenticate' => [
            { body => '{"header":' . header(4) . ',"token":"tok.1"}' } ],
        '/v3/kv/range' => [ { body => range(5) } ],
        # created, then open for 15 s
        '/v3/watch' => [ { trickle => 0.01, body => "$created\n" . (' ' x 1500) } ],
        '/v3/lease/keepalive' => [ { body => $alive }, { body => $alive },
                                   { status => 401, body => $expired } ] },
    race => {
        '/v3/kv/range' => [ { body => range(6,
            key('pollers/svc', '1000', 5, 4096),
            key('routes/svc', $other, 6, 4096)) },
            { body => range(9, key('pollers/svc', '2000', 8, 8192),
                               key('routes/svc', $newer, 9, 8192)) } ],
        # sent a byte every 5 ms: the deletion comes 2.5 s after the watch
        '/v3/watch' => [ { trickle => 0.005, body => $gone },
                         { body => $created, hang => 1 } ],
        '/v3/kv/txn' => [ { body => $lost } ] },
    # this gateway claims svc (lease 255): what it writes
    url => {
        '/v3/kv/range' => [ { body => range(5) },
            { body => range(6, key('pollers/svc', 'ff', 6, 255)) } ],
        '/v3/watch' => [ { body => "$created\n" . '{"result":{"header":'
            . header(6) . ',"events":[{"kv":' . key('pollers/svc', 'ff', 6, 255)
            . '}]}}' . "\n" }, { body => $created, hang => 1 } ] },
    # another gateway's svc is another service: it polled another URL
    elsewhere => { '/v3/kv/range' => [ { body => range(6,
        key('pollers/svc', '1000', 5, 4096),
        key('routes/svc', '{"state":"healthy","url":"http://192.0.2.1:8080",'
            . '"routes":[{"path":"/svc/shared","methods":["GET"]}]}', 6,
            4096)) } ] },
    poll => { %claimed },
    size => { '/v3/kv/range' => [ { body => range(6,
        key('pollers/svc', '1000', 5, 4096),
        key('routes/svc', $big, 6, 4096)) } ] },
);

mock_share_pairs(
    etcd => \%etcd,
    dir => $dir,
);

sub polls { count_requests("$ENV{TEST_NGINX_LOG_DIR}/$_[0].polls",
                           '/health?include_routes=true') }

# the request bodies etcd received
sub lines {
    open my $fh, '<', "$ENV{TEST_NGINX_LOG_DIR}/$_[0].bodies" or return ();
    return <$fh>;
}

sub bodies {
    my ($name, $key) = @_;
    my $k = b64("/nginx-discovery/$key");
    return scalar grep { index($_, $k) >= 0 } lines($name);
}

sub port { $ENV{TEST_NGINX_SERVER_PORT} || 1984 }

use_defaults(no_error_log => "[alert]\n[emerg]\n[crit]");

run_tests();

__DATA__

=== TEST 1: the management API asked to poll svc on a gateway that does not poll it: polled (or refused), not a silent 200 after the timeout
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_POLL share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_POLL interval=10s timeout=1s prefix=/svc;
--- config
    location = /_discovery {
        discovery_status;
    }
    location /_discovery/api/ {
        discovery_api write=on;
    }
--- init
DiscoveryTest::wait_status(qr/"poller":\{"self":false,"lease":"1000"\}.*"version":"7"/, 10);
my $polls = main::polls('poll');
my $t0 = Time::HiRes::time();
my $res = HTTP::Tiny->new(timeout => 10)->post(
    'http://127.0.0.1:' . main::port() . '/_discovery/api/services/svc/poll',
    { headers => { 'Content-Type' => 'application/json' }, content => '{}' });
my $took = Time::HiRes::time() - $t0;
Test::More::diag("POST poll: $res->{status} after ${took}s, polls "
                 . (main::polls('poll') - $polls));
Test::More::ok(main::polls('poll') > $polls || $res->{status} == 409,
               'the service is polled, or the request refused');
--- request
GET /_discovery
--- response_body_like: "poller":\{"self":false,"lease":"1000"\}



=== TEST 2: another gateway's value larger than this gateway's discovery_max_size is refused, as a poll's document would be
--- http_config
    discovery_max_size 4k;
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_SIZE share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_SIZE interval=1s prefix=/svc;
--- init
DiscoveryTest::wait_status(qr/"poller":\{"self":false,"lease":"1000"\}/, 10);
sleep 1;
--- request eval
["GET /svc/padding/200", "GET /_discovery"]
--- error_code eval
[404, 200]
--- response_body_like eval
["", '"last_error":"the routes in the registry are not used']



=== TEST 3: the owner dies and this gateway loses the race for its claim: it does not poll svc (every gateway polled each of the dead owner's services at once: N - 1 polls, not one)
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_RACE share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_RACE interval=10s prefix=/svc;
--- init
DiscoveryTest::wait_status(qr/"poller":\{"self":false,"lease":"1000"\}.*"version":"7"/, 5);
my $polls = main::polls('race');
DiscoveryTest::wait_status(qr/"poller":\{"self":false,"lease":"2000"\}.*"version":"8"/, 8);
sleep 0.5;
Test::More::is(main::polls('race'), $polls, 'svc is not polled by the loser');
--- request
GET /svc/shared
--- response_body_like: ^mock GET /svc/shared$
--- no_error_log
[alert]
[emerg]
is polled by this gateway now



=== TEST 4: user= and password=: the token expires (a JWT's after 5 minutes) while the watch runs: the lease's keepalive is refused, and the gateway authenticates again rather than losing its lease and every claim for good
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_AUTH user=gw password=s3cret share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_AUTH interval=1s prefix=/svc;
--- init
DiscoveryTest::wait_for("the keepalive refused", sub {
    main::count_requests("$ENV{TEST_NGINX_LOG_DIR}/auth.etcd", '/v3/lease/keepalive') >= 3 }, 10);
sleep 2;
Test::More::cmp_ok(main::count_requests("$ENV{TEST_NGINX_LOG_DIR}/auth.etcd",
                                        '/v3/auth/authenticate'), '>=', 2,
                   'authenticated again');
--- request
GET /svc/own
--- response_body_like: ^mock GET /svc/own$



=== TEST 5: what a gateway writes for svc says which service it polled (its URL)
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_URL share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_URL interval=1s prefix=/svc;
--- init
DiscoveryTest::wait_for("the routes written",
                        sub { main::bodies('url', 'routes/svc') >= 1 }, 10);
my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SVC_URL}";
my @values = map { MIME::Base64::decode_base64($_) }
             map { /"value":"([^"]*)"/g } main::lines('url');
Test::More::ok((grep { index($_, qq("url":"$url")) >= 0 } @values),
               'the routes name the URL polled')
    or Test::More::diag("written: @values");
--- request
GET /_discovery
--- response_body_like: "poller":\{"self":true,"lease":"ff"\}



=== TEST 6: another gateway's svc is another service (same name, another URL): its routes are not taken for this one
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ETCD_ELSEWHERE share=on;
    discovery_service svc http://127.0.0.1:$TEST_NGINX_SVC_ELSEWHERE interval=1s prefix=/svc;
--- init
DiscoveryTest::wait_status(qr/"last_error":"the routes in the registry are not used: the routes' value is of the service at \\"http:\/\/192\.0\.2\.1:8080\\", not of this gateway's at /, 10);
--- request eval
["GET /svc/shared", "GET /_discovery"]
--- error_code eval
[404, 200]
--- response_body_like eval
["", '"poller":\{"self":false,"lease":"1000"\}']

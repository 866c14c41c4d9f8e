# TLS polls and host names: the directives, the variables, and what
# nginx -t refuses.  The requests themselves are in t/e2e/test_tls_dns.py.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use File::Temp qw(tempdir);

no_shuffle();
no_root_location();

# a private CA, a server certificate and a client certificate, made here:
# the directives must find real files
my $pki = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_PKI} = $pki;
$ENV{TEST_NGINX_DEAD_PORT} = free_port();

sub openssl {
    my $err = `openssl @_ 2>&1`;
    die "openssl @_ failed: $err" if $?;
}

my $new_key = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';
openssl("req -x509 $new_key -keyout $pki/ca.key -out $pki/ca.pem -days 2"
        . " -subj '/CN=discovery test CA'"
        . " -addext basicConstraints=critical,CA:TRUE"
        . " -addext keyUsage=critical,keyCertSign,cRLSign");
for my $name (qw(server client)) {
    openssl("req $new_key -keyout $pki/$name.key -out $pki/$name.csr"
            . " -subj /CN=$name");
    openssl("x509 -req -in $pki/$name.csr -CA $pki/ca.pem -CAkey $pki/ca.key"
            . " -set_serial " . ($name eq 'server' ? 2 : 3)
            . " -days 2 -out $pki/$name.pem");
}

use_defaults(
    config => "location = /t { return 200 ok; }",
    request => "GET /t",
    no_error_log => "[alert]\n[crit]",
);

run_tests();

__DATA__

=== TEST 1: every TLS directive, host names, credentials and the new variables load
--- http_config
    discovery_ssl_verify on;
    discovery_ssl_trusted_certificate $TEST_NGINX_PKI/ca.pem;
    discovery_ssl_certificate $TEST_NGINX_PKI/client.pem;
    discovery_ssl_certificate_key $TEST_NGINX_PKI/client.key;
    discovery_service secure https://localhost:$TEST_NGINX_DEAD_PORT;
    discovery_service plain http://localhost:$TEST_NGINX_DEAD_PORT;
    discovery_service guarded http://alice:secret@127.0.0.1:$TEST_NGINX_DEAD_PORT;
--- config
    location = /t { return 200 ok; }
    location / {
        discovery_route on;
        proxy_pass $discovery_scheme://$discovery_upstream;
        proxy_set_header Host $discovery_host;
        proxy_ssl_server_name on;
        proxy_ssl_name $discovery_host;
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate $TEST_NGINX_PKI/ca.pem;
    }
    location = /_discovery { discovery_status; }
--- init
DiscoveryTest::wait_ready();
--- response_body chomp
ok
--- error_log
poll of service "guarded" at "http://alice:***@127.0.0.1:
--- no_error_log
[emerg]
[alert]
secret



=== TEST 2: discovery_ssl_verify off, no CA
--- http_config
    discovery_ssl_verify off;
    discovery_service secure https://localhost:$TEST_NGINX_DEAD_PORT;
--- response_body chomp
ok
--- no_error_log
[emerg]
[alert]



=== TEST 3: discovery_ssl_verify takes on or off
--- http_config
    discovery_ssl_verify maybe;
--- must_die
--- error_log
invalid value "maybe" in "discovery_ssl_verify" directive, it must be "on" or "off"



=== TEST 4: the TLS directives are http-level only
--- config
    location / { discovery_ssl_verify off; }
--- must_die
--- error_log
"discovery_ssl_verify" directive is not allowed here



=== TEST 5: discovery_ssl_trusted_certificate twice
--- http_config
    discovery_ssl_trusted_certificate $TEST_NGINX_PKI/ca.pem;
    discovery_ssl_trusted_certificate $TEST_NGINX_PKI/ca.pem;
--- must_die
--- error_log
"discovery_ssl_trusted_certificate" directive is duplicate



=== TEST 6: a missing CA file: nginx -t names it, and the line
--- http_config
    discovery_ssl_trusted_certificate $TEST_NGINX_PKI/missing-ca.pem;
    discovery_service secure https://localhost:$TEST_NGINX_DEAD_PORT;
--- must_die
--- error_log eval
qr{\[emerg\].*missing-ca\.pem.* in \S+/nginx\.conf:\d+}



=== TEST 7: a missing client certificate file
--- http_config
    discovery_ssl_certificate $TEST_NGINX_PKI/missing-client.pem;
    discovery_ssl_certificate_key $TEST_NGINX_PKI/client.key;
    discovery_service secure https://localhost:$TEST_NGINX_DEAD_PORT;
--- must_die
--- error_log eval
qr{\[emerg\].*missing-client\.pem.* in \S+/nginx\.conf:\d+}



=== TEST 8: a missing client key file
--- http_config
    discovery_ssl_certificate $TEST_NGINX_PKI/client.pem;
    discovery_ssl_certificate_key $TEST_NGINX_PKI/missing-client.key;
    discovery_service secure https://localhost:$TEST_NGINX_DEAD_PORT;
--- must_die
--- error_log eval
qr{\[emerg\].*missing-client\.key.* in \S+/nginx\.conf:\d+}



=== TEST 9: a client certificate without its key
--- http_config
    discovery_ssl_certificate $TEST_NGINX_PKI/client.pem;
    discovery_service secure https://localhost:$TEST_NGINX_DEAD_PORT;
--- must_die
--- error_log eval
qr{\[emerg\].*discovery_ssl_certificate_key}

# Self-test: TEST_NGINX_LOAD_MODULES, TEST_NGINX_PORT and unset
# $TEST_NGINX_XXX variables, in subprocesses with their own environment.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use SelfTest;
use IO::Socket::INET;
use Test::More;

my $probe = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp');
my $port = $probe->sockport;
close $probe;

my ($exit, $out) = run_fixture('load-modules.fixture',
    TEST_NGINX_LOAD_MODULES => ' /nonexistent/ngx_a.so  /nonexistent/ngx_b.so ',
    TEST_NGINX_PORT => $port);
is($exit, 0, 'TEST_NGINX_LOAD_MODULES and TEST_NGINX_PORT fixture passes') or diag($out);
like($out, qr/^ok \d+ - .* die as expected$/m, 'nginx died on the missing module');

($exit, $out) = run_fixture('missing-env.fixture');
isnt($exit, 0, 'an unset $TEST_NGINX_XXX variable fails the run');
like($out, qr/^Bail out!.*No environment TEST_NGINX_SURELY_UNSET_VARIABLE defined/m,
     'and bails out naming it') or diag($out);

done_testing();

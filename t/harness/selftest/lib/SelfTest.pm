package SelfTest;

# Shared set-up for the self-tests of t/harness/Test/Nginx/Socket.pm:
# each test file gets its own temporary server root, never loads the
# project's module (it may not be built), and can run fixture .t files in a
# subprocess to check that wrong expectations really fail.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);

our $Dir        = abs_path(dirname(__FILE__) . '/..');    # t/harness/selftest
our $HarnessDir = abs_path("$Dir/..");                    # t/harness

sub import {
    $ENV{TEST_NGINX_SERVROOT} = tempdir('tn-selftest-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    $ENV{TEST_NGINX_LOAD_MODULES} = '';
    delete @ENV{qw(TEST_NGINX_PORT TEST_NGINX_SERVER_PORT TEST_NGINX_CLIENT_PORT
                   TEST_NGINX_USE_HUP TEST_NGINX_NO_CLEAN TEST_NGINX_RANDOMIZE
                   TEST_NGINX_CHECK_ACCUM_ERR_LOG)};
    no strict 'refs';
    *{ caller() . '::run_fixture' } = \&run_fixture;
}

# Runs t/harness/selftest/fixtures/NAME with our harness and returns
# (exit code, combined TAP and diagnostic output).
sub run_fixture {
    my ($name, %env) = @_;
    local %ENV = %ENV;
    delete $ENV{HARNESS_ACTIVE};
    $ENV{TEST_NGINX_SERVROOT} = tempdir('tn-fixture-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    @ENV{keys %env} = values %env;
    my $out = `$^X -I$HarnessDir $Dir/fixtures/$name 2>&1`;
    return ($? >> 8, $out);
}

1;

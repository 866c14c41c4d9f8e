package Test::Nginx::LWP;

# Stands in for openresty's Test::Nginx::LWP, the obsolete LWP-based
# scaffold, which t/harness does not implement: a test file that uses it
# is skipped as a whole (1..0 # SKIP), the way a suite reports a
# prerequisite it lacks, instead of dying at "use" for want of the module.

use strict;
use warnings;

use Test::More ();

sub import {
    Test::More::plan(skip_all => 'Test::Nginx::LWP is not provided by '
                     . 't/harness (use Test::Nginx::Socket, or install the '
                     . 'Test::Nginx distribution)');
}

1;

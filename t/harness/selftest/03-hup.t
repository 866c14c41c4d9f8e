# Self-test: the HUP reload mode (use_hup / TEST_NGINX_USE_HUP) keeps one
# nginx master across blocks, makes each block's config live before its
# request, and keeps each block's error-log checks to its own lines.
use FindBin;
use lib "$FindBin::Bin/lib";
use SelfTest;
use Test::Nginx::Socket 'no_plan';

our %masters;

sub master_pid {
    open my $in, '<', server_root() . '/logs/nginx.pid' or return 'none';
    my $pid = <$in>;
    chomp $pid;
    return $pid;
}

use_hup();
no_shuffle();
add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(init => '$main::masters{$block->name} = main::master_pid();')
        unless defined $block->must_die;
});
run_tests();

my @hup_blocks = grep { /TEST [1-4]:/ } keys %masters;
is(scalar @hup_blocks, 4, 'init ran for the HUP blocks');
my %distinct = map { $masters{$_} => 1 } @hup_blocks;
is(scalar keys %distinct, 1, 'one nginx master served TESTs 1-4');
my ($after_must_die) = grep { /TEST 6:/ } keys %masters;
isnt($masters{$after_must_die}, $masters{$hup_blocks[0]},
     'a must_die block stops the HUP nginx; a new one starts after it');

__DATA__

=== TEST 1: first config
--- config
    location = /t { return 200 "one\n"; }
--- request
GET /t
--- response_body
one



=== TEST 2: reloaded config, logging an error
--- config
    location /x { root html; add_header X-Conf two always; }
--- request
GET /x/nope.html
--- error_code: 404
--- response_headers
X-Conf: two
--- error_log eval
["reconfiguring", "No such file or directory"]



=== TEST 3: the error of TEST 2 is not in this block's log
--- config
    location = /t { return 200 "three\n"; }
--- request
GET /t
--- response_body
three
--- error_log
reconfiguring
--- no_error_log
No such file or directory



=== TEST 4: user_files in HUP mode; the same config as before still reloads
--- config
    location = /t { return 200 "three\n"; }
--- user_files
>>> hup.txt
from hup
--- request
GET /hup.txt
--- response_body
from hup



=== TEST 5: must_die in HUP mode
--- config
    location = /t { no_such_directive; }
--- must_die
--- error_log eval
['[emerg]', 'unknown directive "no_such_directive"']



=== TEST 6: a fresh nginx after must_die
--- config
    location = /t { return 200 "six\n"; }
--- request
GET /t
--- response_body
six

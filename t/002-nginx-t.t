# `nginx -t` checks a configuration without polling any service.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Temp qw(tempdir);
use POSIX qw(mkfifo);
use IO::Socket::INET;
use IO::Select;
use DiscoveryTest;

my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $module = $ENV{TEST_NGINX_LOAD_MODULES}
    or plan skip_all => 'TEST_NGINX_LOAD_MODULES is not set';

my $listen = IO::Socket::INET->new(
    Listen => 8, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
) or die "listen: $!";
my $port = $listen->sockport;

my $dir = tempdir(CLEANUP => 1);
my $temp_paths = temp_paths($dir);
mkdir "$dir/logs";
open my $fh, '>', "$dir/nginx.conf" or die $!;
print $fh <<"_EOC_";
load_module $module;
pid $dir/logs/nginx.pid;
error_log $dir/logs/error.log;
events {}
http {
$temp_paths    discovery_state $dir/table.state;
    discovery_service chat http://127.0.0.1:$port;
}
_EOC_
close $fh;

my $out = `$nginx -t -p $dir -c $dir/nginx.conf 2>&1`;
is $? >> 8, 0, 'nginx -t accepts the configuration' or diag $out;
like $out, qr/test is successful/, 'nginx -t says so';

ok !-e "$dir/table.state", 'nginx -t wrote no state file';

my $sel = IO::Select->new($listen);
ok !$sel->can_read(0.5), 'nginx -t made no connection to the service';

# nginx -t reads no state file either: a FIFO there, which hangs whoever
# opens it for reading, and logging at info, which tells any look at it
mkfifo("$dir/fifo.state", 0600) or die "mkfifo: $!";
open $fh, '<', "$dir/nginx.conf" or die $!;
my $conf = do { local $/; <$fh> };
close $fh;
$conf =~ s{table\.state}{fifo.state};
$conf =~ s{(error_log [^;\s]+)}{$1 info};
open $fh, '>', "$dir/fifo.conf" or die $!;
print $fh $conf;
close $fh;

$out = `timeout 10 $nginx -t -p $dir -c $dir/fifo.conf 2>&1`;
is $? >> 8, 0, 'nginx -t with a FIFO at the state path ends, successfully'
    or diag $out;
open $fh, '<', "$dir/logs/error.log" or die $!;
my $log = do { local $/; <$fh> };
close $fh;
unlike "$out$log", qr/state file/, 'nginx -t does not look at the state file';

# nginx -t logs the module's version, debian/changelog's, at debug level only
my $version = module_version();
for my $level (qw(debug info)) {
    (my $leveled = $conf) =~ s{error_log [^;]+}{error_log $dir/logs/$level.log $level};
    open $fh, '>', "$dir/$level.conf" or die $!;
    print $fh $leveled;
    close $fh;

    $out = `$nginx -t -p $dir -c $dir/$level.conf 2>&1`;
    is $? >> 8, 0, "nginx -t with error_log at $level" or diag $out;
    open $fh, '<', "$dir/logs/$level.log" or die $!;
    $log = do { local $/; <$fh> };
    close $fh;
    my $said = $log =~ /\[debug\] .*discovery: module version \Q$version\E$/m;
    ok $level eq 'debug' ? $said : !$said,
       "nginx -t at $level " . ($level eq 'debug' ? 'logs' : 'does not log')
       . " module version $version";
}

done_testing();

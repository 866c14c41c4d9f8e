# The registry's reload as nginx is deployed: the master runs as root, the
# workers as nobody, who may not signal it.  Plain Test::More: the tests
# start nginx themselves, daemonized or not, reload it and restart it.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use File::Temp qw(tempdir);
use MIME::Base64 qw(encode_base64);
use IO::Socket::INET;
use DiscoveryTest;

$ENV{TEST_NGINX_LOAD_MODULES}
    or plan skip_all => 'TEST_NGINX_LOAD_MODULES is not set';
$> == 0
    or plan skip_all => 'the master runs as root: needs root';
my @nobody = getpwnam 'nobody'
    or plan skip_all => 'no user nobody';
my $group = getgrgid $nobody[3];

my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $workers = 2;

# the prefix: nobody must reach the temporary paths under it
my $dir = tempdir(CLEANUP => 1);
chmod 0755, $dir or die "chmod $dir: $!";
mkdir "$dir/logs";

my ($etcd, $gateway, $one, $two) = map { free_port() } 1 .. 4;

# An etcd mock: a range read answers the services listed in
# $dir/services, one "name port" a line, read at each request; a watch
# never answers, so only a new watcher (a new worker) reads them again.
sub b64 { encode_base64(shift, '') }

sub range {
    open my $fh, '<', "$dir/services" or return '{}';
    my @kvs;
    my $rev = 4;
    while (<$fh>) {
        my ($name, $port) = split;
        $rev++;
        push @kvs, sprintf '{"key":"%s","create_revision":"%d",'
            . '"mod_revision":"%d","version":"1","value":"%s"}',
            b64("/nginx-discovery/services/$name"), $rev, $rev,
            b64(qq({"url":"http://127.0.0.1:$port","interval":"1s"}));
    }
    return qq({"header":{"cluster_id":"1","member_id":"2","revision":"$rev",)
         . qq("raft_term":"3"},"kvs":[) . join(',', @kvs) . '],"count":"'
         . scalar(@kvs) . '"}';
}

my $mock = fork // die "fork: $!";
if ($mock == 0) {
    my $listen = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
        LocalPort => $etcd, Proto => 'tcp', ReuseAddr => 1)
        or die "etcd mock: $!";
    my @watches;
    $SIG{PIPE} = 'IGNORE';
    while (my $c = $listen->accept) {
        my $req = '';
        while ($req !~ /\r\n\r\n/) {
            sysread($c, $req, 4096, length $req) or last;
        }
        if ($req =~ m{^POST /v3/watch }) {
            push @watches, $c;
            next;
        }
        my $body = $req =~ m{^POST /v3/kv/range } ? range() : '{}';
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            . "Content-Length: " . length($body)
            . "\r\nConnection: close\r\n\r\n$body";
        close $c;
    }
    POSIX::_exit(0);
}
END { local $?; if ($mock) { kill 'KILL', $mock; waitpid $mock, 0 } }

sub services {
    open my $fh, '>', "$dir/services" or die $!;
    print $fh @_;
    close $fh;
}

sub config {
    my ($daemon, $registry) = @_;
    my $modules = join '', map { "load_module $_;\n" }
        split ' ', $ENV{TEST_NGINX_LOAD_MODULES};
    my $temp = temp_paths($dir);
    $registry = $registry
        ? "    discovery_registry etcd http://127.0.0.1:$etcd;\n"
        : "    discovery_service one http://127.0.0.1:$one;\n";
    open my $fh, '>', "$dir/nginx.conf" or die $!;
    print $fh <<"_EOC_";
${modules}user nobody $group;
daemon $daemon;
master_process on;
worker_processes $workers;
pid $dir/logs/nginx.pid;
error_log $dir/logs/error.log info;
events { worker_connections 256; }
http {
    access_log off;
$temp$registry
    server {
        listen 127.0.0.1:$gateway;
        location / {
            discovery_route on;
            proxy_pass http://\$discovery_upstream;
        }
    }
    server {
        listen 127.0.0.1:$one;
        location = /health {
            return 200 '{"routes": [{"path": "/one/{id}", "methods": ["GET"]}]}';
        }
        location / { return 200 "one \$uri\\n"; }
    }
    server {
        listen 127.0.0.1:$two;
        location = /health {
            return 200 '{"routes": [{"path": "/two/{id}", "methods": ["GET"]}]}';
        }
        location / { return 200 "two \$uri\\n"; }
    }
}
_EOC_
    close $fh;
}

# nginx -s: its notice "signal process started" goes to a file of its own
sub nginx {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>>', "$dir/signal.log";
        { exec $nginx, '-p', $dir, '-c', "$dir/nginx.conf", @_ }
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
}

sub master {
    open my $fh, '<', "$dir/logs/nginx.pid" or return;
    my $pid = <$fh>;
    return $pid && $pid =~ /^(\d+)$/ && kill(0, $1) ? $1 : undef;
}

# starts nginx; with "daemon off" it stays our child, which we reap
my $child;
sub start {
    my $daemon = shift;
    unlink "$dir/logs/nginx.pid";
    $child = fork // die "fork: $!";
    if ($child == 0) {
        open STDOUT, '>', '/dev/null';
        { exec $nginx, '-p', $dir, '-c', "$dir/nginx.conf" }
        POSIX::_exit(127);
    }
    if ($daemon eq 'on') {
        waitpid $child, 0;
        undef $child;
    }
    return wait_for('the pid file', \&master, 5);
}

sub stop {
    my $master = master() or return;
    nginx('-s', 'stop');
    wait_for('the master to exit', sub {
        waitpid $child, WNOHANG if $child;
        !kill 0, $master;
    }, 5);
    undef $child;
}

sub routed {
    my ($path, $body) = @_;
    my $r;
    return wait_for("$path to be routed", sub {
        $r = http_get($gateway, $path);
        defined $r && $r =~ m{^HTTP/1\.\d 200} && $r =~ /\Q$body\E$/;
    }, 5, sub { $r });
}

# the master's children, as "state name" (a zombie's state is Z)
sub children {
    my $master = shift;
    open my $fh, '<', "/proc/$master/task/$master/children" or return ();
    my @pids = split ' ', (<$fh> // '');
    return map {
        open my $st, '<', "/proc/$_/stat";
        my ($state) = (<$st> // '') =~ /\) (\S)/;
        open my $cmd, '<', "/proc/$_/cmdline";
        my $name = <$cmd> // '';
        $name =~ s/\0.*//s;
        "$state $name";
    } @pids;
}

# once the old workers are gone: only the workers, none a zombie
sub only_workers {
    my ($master, $what) = @_;
    my @seen;
    my $only = sub {
        @seen == $workers && !grep { !/^[RS] nginx: worker process$/ } @seen
    };
    poll_until(sub { @seen = children($master); $only->() }, 5);
    ok $only->(), "the master's children $what: $workers workers, no zombie"
        or diag "children of the master $what: @seen";
}

# the pipes the master holds that signal it (O_ASYNC) when written
sub pipes {
    my $master = shift;
    return scalar grep {
        my $fd = $_;
        open my $fh, '<', "/proc/$master/fdinfo/$fd";
        my ($flags) = join('', <$fh>) =~ /^flags:\s*(\d+)/m;
        (readlink("/proc/$master/fd/$fd") // '') =~ /^pipe:/
            && oct($flags // 0) & 020000;
    } map { m{(\d+)$} } glob "/proc/$master/fd/*";
}

sub error_log {
    open my $fh, '<', "$dir/logs/error.log" or return '';
    local $/;
    return <$fh>;
}

sub reload {
    my $master = shift;
    my $pos = length error_log();
    nginx('-s', 'reload');
    wait_for('the reload', sub {
        substr(error_log(), $pos) =~ /start worker process/;
    }, 5);
}

for my $daemon ('off', 'on') {
    unlink "$dir/logs/error.log";
    services("one $one\n");
    config($daemon, 1);

    my $master = start($daemon);
    ok routed('/one/1', 'one /one/1'), "daemon $daemon: a registered service "
        . 'is routed: the workers made the master reload';
    only_workers($master, 'after its first reload');
    is pipes($master), 1, 'the master holds one pipe that signals it';

    # a second service, seen by the watcher of a reloaded configuration
    services("one $one\n", "two $two\n");
    reload($master);
    ok routed('/two/1', 'two /two/1'), 'one registered next is routed';
    only_workers($master, 'after reloads');
    is pipes($master), 1, 'reloads leave the master one';

    stop();
    $master = start($daemon);
    ok routed('/two/2', 'two /two/2'), 'after a restart, too';
    only_workers($master, 'after a restart');

    config($daemon, 0);
    reload($master);
    ok routed('/one/3', 'one /one/3'), 'a configuration with no registry';
    is pipes($master), 0, 'has no pipe';
    only_workers($master, 'with no registry');

    stop();

    my $log = error_log();
    like $log, qr/\[notice\].*discovery: the registry's services changed at revision \d+: reloading the configuration/,
        'the worker said it asked for a reload';
    unlike $log, qr/\[(alert|emerg|crit)\]/, 'no alert'
        or diag join "\n", grep { /\[(alert|emerg|crit)\]/ } split /\n/, $log;
}

done_testing();

package Test::Nginx::Socket;

# A local, self-contained re-implementation of openresty's Test::Nginx::Socket
# (the data-driven "=== TEST / --- section" test scaffold from the CPAN
# distribution Test-Nginx), written from that module's documentation so that
# test files written for the real module run unchanged here, and vice versa.
# It is only used when the real module is not installed (see t/run-prove.sh).
# See the POD after __END__ for what is and is not implemented.

use strict;
use warnings;
use v5.10.1;

use Test::Base -base;    # blocks(), filters, ONLY/SKIP/LAST, Test::More

use Digest::MD5 ();
use Digest::SHA ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use File::Path qw(make_path remove_tree);
use File::Spec ();
use HTTP::Response ();
use IO::Select ();
use IO::Socket::INET ();
use List::Util qw(shuffle min);
use POSIX qw(:sys_wait_h SIGQUIT SIGTERM SIGKILL SIGHUP);
use Scalar::Util qw(looks_like_number);
use Test::LongString ();
use Text::Diff ();
use Time::HiRes qw(sleep time);

our $VERSION = '0.29_local';

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test
    repeat_each config_preamble worker_connections
    master_process_enabled
    no_long_string workers master_on master_off
    log_level no_shuffle no_root_location use_hup
    server_name
    server_addr server_root html_dir server_port server_port_for_client
    timeout no_nginx_manager check_accum_error_log
    add_block_preprocessor bail_out add_cleanup_handler
    add_response_body_check
);

# ---------------------------------------------------------------------------
# Settings (same names, defaults and environment variables as the real one)
# ---------------------------------------------------------------------------

our $RepeatEach           = 1;
our $NoShuffle            = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $Workers              = 1;
our $WorkerConnections    = 64;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $NoRootLocation       = 0;
our $UseHup               = $ENV{TEST_NGINX_USE_HUP};
our $Timeout              = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $TestNginxSleep       = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $CheckAccumErrLog     = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $NoNginxManager       = $ENV{TEST_NGINX_NO_NGINX_MANAGER} || 0;
our $ForceRestartOnTest   = defined $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST}
                            ? $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST} : 1;
our $LoadModules          = $ENV{TEST_NGINX_LOAD_MODULES};
our $WorkerUser           = $ENV{TEST_NGINX_WORKER_USER};
our $EventType            = $ENV{TEST_NGINX_EVENT_TYPE};
our $PostponeOutput       = $ENV{TEST_NGINX_POSTPONE_OUTPUT};
our $ReusePort            = $ENV{TEST_NGINX_REUSE_PORT};
our $Randomize            = $ENV{TEST_NGINX_RANDOMIZE};
our $Verbose              = $ENV{TEST_NGINX_VERBOSE};
our $NoLongString;
our $ConfigPreamble       = '';
our $ServerAddr           = '127.0.0.1';
our $ServerName           = 'localhost';
our $NginxBinary          = $ENV{TEST_NGINX_BINARY} || default_binary();
our (@EnvToNginx, @BlockPreprocessors, @CleanupHandlers, @ResponseBodyChecks);

# Seconds to wait for nginx to start, to exit, and to take a new config.
my $StartTimeout  = 10;
my $ReloadTimeout = 10;

if (defined $WorkerUser && $WorkerUser !~ /^[\w-]+(?:\s+[\w-]+)?$/) {
    die "Bad value in the env TEST_NGINX_WORKER_USER: $WorkerUser\n";
}

srand $$;

# The real default port is 1984; we pick a free port instead when neither
# TEST_NGINX_SERVER_PORT nor TEST_NGINX_PORT is set, so that a busy 1984
# (or a parallel run) cannot break the suite.
our $ServerPort = $Randomize ? undef
                : ($ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT});
$ServerPort ||= pick_free_port({})
    or die "Cannot find a free TCP port for nginx\n";
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT}
                           || ($Randomize ? undef : $ENV{TEST_NGINX_PORT})
                           || $ServerPort;

our $ServRoot = $Randomize
    ? File::Spec->rel2abs("t/servroot_$ServerPort")
    : File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} || 't/servroot');
$ServRoot =~ s{/+$}{};
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";
# nginx's own stderr (Debian's nginx is built with --error-log-path=stderr;
# we pass -e so start-up errors land in error.log, and keep stderr here).
our $StderrFile = "$LogDir/nginx.stderr";

our ($NginxVersion, $NginxRawVersion, $OpenSSLVersion);

# ---------------------------------------------------------------------------
# Run-time state
# ---------------------------------------------------------------------------

my $NginxPid;             # our direct child: the nginx (master) process
my $InstanceLogPos = 0;   # error.log offset where the current nginx/reload began
my $ErrLogFilePos  = 0;   # error.log offset where the next check starts reading
my $FirstTime      = 1;
my ($PrevConfig, $PrevBlock, $ConfigVersion);
my $ParentPid = $$;

# ---------------------------------------------------------------------------
# Exported configuration functions
# ---------------------------------------------------------------------------

sub repeat_each (@) { $RepeatEach = shift if @_; return $RepeatEach }
sub no_shuffle () { $NoShuffle = 1 }
sub use_hup () { $UseHup = 1 }
sub no_long_string () { $NoLongString = 1 }
sub no_root_location () { $NoRootLocation = 1 }
sub no_nginx_manager () { $NoNginxManager = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub master_on () { $MasterProcessEnabled = 'on' }
sub master_off () { $MasterProcessEnabled = 'off' }
sub config_preamble ($) { $ConfigPreamble = shift }
sub html_dir () { return $HtmlDir }
sub server_root () { return $ServRoot }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($) { unshift @CleanupHandlers, shift }
sub add_response_body_check ($) { push @ResponseBodyChecks, shift }

sub master_process_enabled (@) {
    return $MasterProcessEnabled unless @_;
    $MasterProcessEnabled = shift() ? 'on' : 'off';
}

sub workers (@) { return $Workers unless @_; $Workers = shift }
sub worker_connections (@) {
    return $WorkerConnections unless @_;
    $WorkerConnections = shift;
}
sub log_level (@) { return $LogLevel unless @_; $LogLevel = shift }
sub timeout (@) { return $Timeout unless @_; $Timeout = shift }
sub server_addr (@) { return $ServerAddr unless @_; $ServerAddr = shift }
sub server_name (@) { return $ServerName unless @_; $ServerName = shift }
sub server_port (@) { return $ServerPort unless @_; $ServerPort = shift }
sub server_port_for_client (@) {
    return $ServerPortForClient unless @_;
    $ServerPortForClient = shift;
}

sub env_to_nginx (@) {
    Carp::croak("env_to_nginx: no arguments specified") unless @_;
    for my $v (@_) {
        Carp::croak("env_to_nginx: bad argument value: $v\n")
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

# String comparison honouring no_long_string() and Regexp expectations.
# On failure of a plain string comparison a unified diff is printed too.
sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }
    if ($NoLongString) {
        return is($got, $expected, $desc);    # Test::Base's is() diffs
    }
    my $ok = Test::LongString::is_string($got, $expected, $desc);
    if (!$ok && defined $got && defined $expected) {
        diag("diff (- expected, + got):\n"
             . Text::Diff::diff(\$expected, \$got, { STYLE => 'Unified' }));
    }
    return $ok;
}

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

sub verbose { warn @_ if $Verbose }

# A block's section value as a scalar (block accessors return an empty list
# in list context when the section is missing, which would shift arguments).
sub sec {
    my ($block, $section) = @_;
    return scalar $block->$section;
}

sub can_run {
    my ($cmd) = @_;
    if ($cmd =~ m{/}) {
        return -f $cmd && -x _ ? $cmd : undef;
    }
    for my $dir (split /:/, $ENV{PATH} // '') {
        next if $dir eq '';
        return "$dir/$cmd" if -f "$dir/$cmd" && -x _;
    }
    return undef;
}

sub default_binary { return can_run('nginx') ? 'nginx' : '/usr/sbin/nginx' }

# "0.5", "500ms" or "2s" -> seconds
sub parse_time {
    my ($tm) = @_;
    return undef unless defined $tm;
    $tm =~ s/^\s+|\s+$//g;
    return $1 / 1000 if $tm =~ /^([\d.]+)ms$/;
    return $1 if $tm =~ /^([\d.]+)s$/;
    return $tm;
}

sub trim {
    my ($s) = @_;
    return undef unless defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /g;
    $s =~ s/\s{2,}/ /g;
    return $s;
}

sub fmt_str {
    my ($s) = @_;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

sub slurp {
    my ($file, $from) = @_;
    open my $in, '<', $file or return '';
    binmode $in;
    seek $in, $from, 0 if $from;
    local $/;
    my $data = <$in>;
    return $data // '';
}

sub tail_lines {
    my ($text, $n) = @_;
    my @lines = split /\n/, $text // '';
    @lines = @lines[-$n .. -1] if @lines > $n;
    return join '', map { "    $_\n" } @lines;
}

sub port_is_free {
    my ($port) = @_;
    my $sock = IO::Socket::INET->new(
        LocalAddr => '0.0.0.0', LocalPort => $port, Proto => 'tcp',
        ReuseAddr => 1, Listen => 1,
    );
    return 0 unless $sock;
    close $sock;
    return 1;
}

# A random unprivileged port that is free now, below Linux's ephemeral range.
sub pick_free_port {
    my ($used) = @_;
    for (1 .. 1000) {
        my $port = 10000 + int rand 22000;
        next if $used->{$port};
        return $port if port_is_free($port);
    }
    return undef;
}

sub gen_rand_str {
    my ($len) = @_;
    my @chars = ('A' .. 'Z', 'a' .. 'z', '0' .. '9');
    return join '', map { $chars[rand @chars] } 1 .. $len;
}

sub get_canon_version { sprintf "%d.%03d%03d", @_[0 .. 2] }

sub detect_versions {
    my $out = `$NginxBinary -V 2>&1`;
    if (!defined $out || $? != 0) {
        bail_out("Failed to run \"$NginxBinary -V\": " . ($out // ''));
    }
    if ($out =~ m{built with OpenSSL (\d+)\.(\d+)\.(\d+)([a-z])?}) {
        $OpenSSLVersion = get_canon_version($1, $2, $3)
                          . (defined $4 ? sprintf('%03d', ord($4) - ord('a')) : '');
    }
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}
        || $out =~ m{\w+/(\d+)\.(\d+)\.(\d+)})
    {
        $NginxRawVersion = "$1.$2.$3";
        $NginxVersion = get_canon_version($1, $2, $3);
    }
}

sub is_alive {
    my ($pid) = @_;
    return 0 unless $pid && kill 0, $pid;
    my $stat = slurp("/proc/$pid/stat");
    return 0 if $stat =~ /^\d+ \(.*\) Z/s;    # zombie, waiting for init
    return 1;
}

# ---------------------------------------------------------------------------
# Server root, user files and nginx.conf
# ---------------------------------------------------------------------------

sub setup_server_root {
    my ($keep_logs) = @_;
    my @old = ($ConfDir, $HtmlDir, glob("$ServRoot/*_cache"));
    push @old, $LogDir, glob("$ServRoot/*_temp") unless $keep_logs;
    remove_tree(grep { -e } @old);
    for my $dir ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        next if -d $dir;
        make_path($dir) or bail_out("Failed to create directory $dir: $!");
    }
    write_file("$HtmlDir/index.html", '<html><head><title>It works!</title>'
               . '</head><body>It works!</body></html>');
}

sub write_file {
    my ($path, $data) = @_;
    open my $out, '>', $path or bail_out("Cannot open $path for writing: $!");
    binmode $out;
    print $out $data;
    close $out;
}

# Expands $TEST_NGINX_XXX from %ENV, and $TEST_NGINX_RAND_PORT_N to free
# ports, the same port for the same N throughout one test block.
sub expand_env_in_text {
    my ($text, $name, $rand_ports) = @_;
    return undef unless defined $text;

    my $expand = sub {
        my ($var) = @_;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            return $rand_ports->{$var} if defined $rand_ports->{$var};
            my %used = ($ServerPort => 1, map { $_ => 1 } values %$rand_ports);
            my $port = pick_free_port(\%used)
                // bail_out("$name - Cannot find an available port for $var.");
            return $rand_ports->{$var} = $port;
        }
        bail_out("$name - No environment $var defined.") unless defined $ENV{$var};
        return $ENV{$var};
    };
    $text =~ s/\$(TEST_NGINX_[_A-Z0-9]+)/$expand->($1)/ge;
    return $text;
}

sub parse_user_files {
    my ($block) = @_;
    my $files = $block->user_files;
    return [] unless $files;
    return $files if ref $files eq 'ARRAY';
    bail_out($block->name . " - user_files: only a string or an ARRAY is accepted")
        if ref $files;

    my (@list, $cur);
    for my $line (split /^/, $files) {
        if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
            $cur = [$1, '', $2];
            push @list, $cur;
        } elsif ($cur) {
            $cur->[1] .= $line;
        }
    }
    return \@list;
}

sub write_user_files {
    my ($block, $rand_ports) = @_;
    my $name = $block->name;
    for my $file (@{ parse_user_files($block) }) {
        my ($fname, $body, $date) = @$file;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        (my $dir = $path) =~ s{/[^/]*$}{};
        make_path($dir) unless -d $dir;
        write_file($path, expand_env_in_text($body // '', $name, $rand_ports));
        if ($date) {
            local $ENV{TZ} = 'GMT';
            system('touch', '-t', $date, $path) == 0
                or bail_out("$name - Failed to touch -t '$date' $path");
        }
    }
}

sub load_module_lines {
    return '' unless $LoadModules;
    return join '', map { "load_module $_;\n" } grep { length } split /\s+/, $LoadModules;
}

sub temp_path_lines {
    my ($http_config) = @_;
    my $out = '';
    for my $kind (qw(client_body proxy fastcgi uwsgi scgi)) {
        next if $http_config =~ /\b${kind}_temp_path\b/;
        $out .= sprintf "    %-22s %s/%s_temp;\n", "${kind}_temp_path", $ServRoot, $kind;
    }
    return $out;
}

sub write_config_file {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;
    my $http_config = expand_env_in_text(sec($block, 'http_config'), $name, $rand_ports) // '';
    my $main_config = expand_env_in_text(sec($block, 'main_config'), $name, $rand_ports) // '';
    my $post_main   = expand_env_in_text(sec($block, 'post_main_config'), $name, $rand_ports) // '';
    my $err_log     = $block->error_log_file || $ErrLogFile;
    my $server_name = $block->server_name // $ServerName;
    my $master      = $UseHup ? 'on' : $MasterProcessEnabled;
    my $listen_opts = $ReusePort ? ' reuseport' : '';
    $config //= '';

    my $env = join '', map { my $v = /\s/ ? "'$_'" : $_; "env $v;\n" } @EnvToNginx;
    my $postpone = (defined $PostponeOutput && $http_config !~ /\bpostpone_output\b/)
                   ? "    postpone_output $PostponeOutput;\n" : '';
    my $root_location = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_
    my $version_server = !$UseHup ? '' : <<"_EOC_";
    server {
        listen          $ServerPort$listen_opts;
        server_name     'Test-Nginx';

        location = /ver {
            return 200 '$ConfigVersion';
        }
    }
_EOC_
    my $event_use = $EventType ? "    use $EventType;\n" : '';
    my $user = defined $WorkerUser ? "user $WorkerUser;\n"
             : $> == 0             ? "user root;\n"
             :                       '';
    my $temp_paths = temp_path_lines($http_config);

    write_file($ConfFile, load_module_lines() . <<"_EOC_");
worker_processes  $Workers;
daemon off;
master_process $master;
error_log $err_log $LogLevel;
pid       $PidFile;
env MOCKEAGAIN_VERBOSE;
env MOCKEAGAIN;
env MOCKEAGAIN_WRITE_TIMEOUT_PATTERN;
env LD_PRELOAD;
env LD_LIBRARY_PATH;
env DYLD_INSERT_LIBRARIES;
env DYLD_FORCE_FLAT_NAMESPACE;
$env
$main_config

http {
    access_log $AccLogFile;

    default_type text/plain;
    keepalive_timeout  68;

$temp_paths$postpone
$http_config

    server {
        listen          $ServerPort$listen_opts;
        server_name     '$server_name';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }

$version_server}

$post_main

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
$event_use}
env ASAN_OPTIONS;
env MOCKNOEAGAIN_VERBOSE;
env MOCKNOEAGAIN;
$user
_EOC_
}

# ---------------------------------------------------------------------------
# nginx process management: nginx runs in the foreground ("daemon off") as
# our direct child, in its own process group, so we can waitpid() it.
# ---------------------------------------------------------------------------

sub nginx_command {
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', $ConfFile);
    # -e (nginx >= 1.19.5): the log used before error_log is configured
    push @cmd, '-e', $ErrLogFile if !$NginxVersion || $NginxVersion >= 1.019005;
    return @cmd;
}

sub spawn_nginx {
    my @cmd = nginx_command();
    verbose("starting: @cmd\n");
    my $pid = fork;
    bail_out("fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>>', $StderrFile;
        exec { $cmd[0] } @cmd
            or print STDERR "exec $cmd[0] failed: $!\n";
        POSIX::_exit(127);
    }
    return $pid;
}

sub pid_file_says {
    my ($pid) = @_;
    my $content = slurp($PidFile);
    return $content =~ /^\s*$pid\s*$/;
}

# Waits until nginx has written its pid file (by then its listening sockets
# are bound, so connections queue until it accepts them) or has exited.
# Returns ('up'), ('exited', $wait_status) or ('timeout').
sub wait_for_nginx {
    my ($pid, $secs) = @_;
    my $deadline = time + $secs;
    while (1) {
        return ('exited', $?) if waitpid($pid, WNOHANG) == $pid;
        return ('up') if pid_file_says($pid);
        return ('timeout') if time > $deadline;
        sleep 0.002;
    }
}

sub reap {
    my ($pid, $secs) = @_;
    my $deadline = time + $secs;
    while (time <= $deadline) {
        my $r = waitpid($pid, WNOHANG);
        return 1 if $r == $pid || $r == -1;
        sleep 0.002;
    }
    return 0;
}

sub kill_child {
    my ($pid, $name) = @_;
    my $first = $ENV{TEST_NGINX_FAST_SHUTDOWN} ? SIGTERM : SIGQUIT;
    kill $first, $pid;
    return 1 if reap($pid, $Timeout);
    warn "$name - timeout when waiting for nginx $pid to exit, sending TERM\n";
    kill SIGTERM, $pid;
    return 1 if reap($pid, 1);
    warn "$name - WARNING: killing nginx $pid with force...\n";
    kill SIGKILL, -$pid;
    waitpid($pid, 0);
    return 0;
}

sub stop_nginx {
    my ($name) = @_;
    return unless defined $NginxPid;
    my $pid = $NginxPid;
    undef $NginxPid;
    local $?;
    if (waitpid($pid, WNOHANG) == $pid) {
        warn "WARNING: $name - nginx $pid had already exited "
             . describe_status($?) . "\n";
        return;
    }
    kill_child($pid, $name);
    if ($? & 127 && ($? & 127) != SIGKILL) {
        warn "WARNING: $name - nginx $pid " . describe_status($?) . "\n";
    }
}

sub describe_status {
    my ($status) = @_;
    return sprintf("(killed by signal %d%s)", $status & 127,
                   $status & 128 ? ', core dumped' : '') if $status & 127;
    return sprintf("(exit code %d)", $status >> 8);
}

# An nginx left running by an earlier TEST_NGINX_NO_CLEAN run in our servroot.
sub kill_stale_nginx {
    my $pid = slurp($PidFile);
    return unless $pid =~ /^\s*(\d+)\s*$/;
    $pid = $1;
    return if $pid == ($NginxPid // 0) || !is_alive($pid);
    return unless slurp("/proc/$pid/cmdline") =~ /nginx/;
    warn "killing stale nginx $pid (from $PidFile)\n";
    kill SIGQUIT, $pid;
    my $deadline = time + $Timeout;
    sleep 0.01 while is_alive($pid) && time < $deadline;
    kill SIGKILL, $pid if is_alive($pid);
}

sub nginx_output_since {
    my ($pos) = @_;
    return "error.log:\n" . tail_lines(slurp($ErrLogFile, $pos), 30)
         . "stderr:\n" . tail_lines(slurp($StderrFile), 30);
}

# The directive an nginx that failed to start or reload did not know, as
# the real one finds it (only with TEST_NGINX_IGNORE_MISSING_DIRECTIVES).
sub missing_directive {
    my ($log_pos) = @_;
    return undef unless $ENV{TEST_NGINX_IGNORE_MISSING_DIRECTIVES};
    my $out = slurp($ErrLogFile, $log_pos) . slurp($StderrFile);
    return $out =~ /\[emerg\] (?:\S+?: )?unknown directive "([^"]+)"/ ? $1 : undef;
}

# (Re)starts nginx from scratch for a test block. Returns true on success,
# or the reason for a dry run ("the lack of directive X") when nginx did not
# start for a directive it lacks and TEST_NGINX_IGNORE_MISSING_DIRECTIVES is
# set; on other failures a failed test with nginx's output has been emitted.
sub start_nginx {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    stop_nginx($name);
    kill_stale_nginx() if $FirstTime;
    check_prev_block_shutdown_error_log();
    setup_server_root(0);
    write_user_files($block, $rand_ports);
    write_config_file($block, $config, $rand_ports);
    $InstanceLogPos = 0;

    my $pid = spawn_nginx();
    my ($state, $status) = wait_for_nginx($pid, $StartTimeout);
    if ($state eq 'up') {
        $NginxPid = $pid;
        return 1;
    }
    if ($state eq 'timeout') {
        kill SIGKILL, -$pid;
        waitpid($pid, 0);
    } elsif (defined(my $directive = missing_directive(0))) {
        return "the lack of directive $directive";
    }
    my $why = $state eq 'timeout' ? "no pid file after ${StartTimeout}s"
                                  : "nginx exited " . describe_status($status);
    fail("$name - failed to start nginx ($why)");
    diag("command: " . join(' ', nginx_command()) . "\n" . nginx_output_since(0));
    return 0;
}

# HUP mode: loads the block's config into the running nginx.
sub reload_nginx {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    setup_server_root(1);
    write_user_files($block, $rand_ports);
    write_config_file($block, $config, $rand_ports);
    my $pos = -s $ErrLogFile // 0;
    verbose("sending HUP to $NginxPid\n");
    kill SIGHUP, $NginxPid;
    check_prev_block_shutdown_error_log();

    if (!wait_config_version($name, $pos)) {
        if (defined(my $directive = missing_directive($pos))) {
            return "the lack of directive $directive";
        }
        fail("$name - failed to reload configuration");
        diag(nginx_output_since($pos));
        return 0;
    }
    $InstanceLogPos = $pos;
    return 1;
}

sub fetch_config_version {
    my $sock = IO::Socket::INET->new(
        PeerAddr => $ServerAddr, PeerPort => $ServerPort, Proto => 'tcp',
        Timeout => 1,
    ) or return '';
    print $sock "GET /ver HTTP/1.0\r\nHost: Test-Nginx\r\n\r\n";
    my $resp = '';
    my $sel = IO::Select->new($sock);
    while ($sel->can_read(1)) {
        my $n = sysread $sock, my $buf, 4096;
        last unless $n;
        $resp .= $buf;
    }
    close $sock;
    return $resp =~ /\r\n\r\n(.*)\z/s ? $1 : '';
}

# The new config is live once /ver (in the extra "Test-Nginx" server)
# answers the new version string and nginx's old workers no longer accept
# connections: they have been told to quit (and renamed themselves "worker
# process is shutting down") or are gone. The master does that 100ms after
# starting the new workers.
sub wait_config_version {
    my ($name, $log_pos) = @_;
    my $deadline = time + $ReloadTimeout;
    my $hits = 0;
    while (time < $deadline) {
        if (fetch_config_version() eq $ConfigVersion) {
            $hits++;
            return 1 if old_workers_gone() // $hits >= 15;
            sleep 0.01;
            next;
        }
        $hits = 0;
        return 0 if slurp($ErrLogFile, $log_pos) =~ /\[emerg\]/;
        sleep 0.01;
    }
    return 0;
}

# True once the master has no more accepting workers than configured;
# undef when /proc cannot tell.
sub old_workers_gone {
    my $children = "/proc/$NginxPid/task/$NginxPid/children";
    return undef unless -r $children && $Workers =~ /^\d+$/;
    my @workers = grep {
        slurp("/proc/$_/cmdline") =~ /worker process\0*$/
    } split ' ', slurp($children);
    return @workers <= $Workers;
}

sub cleanup {
    $_->() for @CleanupHandlers;
    @CleanupHandlers = ();
}

END {
    if ($$ == $ParentPid) {
        local $?;
        cleanup();
        stop_nginx('END') unless $ENV{TEST_NGINX_NO_CLEAN};
        check_prev_block_shutdown_error_log();
        if ($Randomize && $ServRoot =~ m{/t/servroot_\d+$} && !$ENV{TEST_NGINX_NO_CLEAN}) {
            remove_tree($ServRoot);
        }
    }
}

# ---------------------------------------------------------------------------
# Error log and access log
# ---------------------------------------------------------------------------

# Lines logged since the last check (or since the current nginx instance
# started, with check_accum_error_log()).
sub error_log_data {
    # let nginx log what it does after closing the connection (log phase)
    sleep $TestNginxSleep * 3;
    open my $in, '<', $ErrLogFile or return [];
    seek $in, ($CheckAccumErrLog ? $InstanceLogPos : $ErrLogFilePos), 0;
    my @lines = <$in>;
    $ErrLogFilePos = tell($in) unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub access_log_data {
    sleep $TestNginxSleep * 3;
    open my $in, '<', $AccLogFile or return [];
    my @lines = <$in>;
    return \@lines;
}

# A section value of patterns: lines of substrings, a qr//, or an array of both.
sub pattern_list {
    my ($pats) = @_;
    if (!ref $pats) {
        chomp $pats;
        return [split /\n+/, $pats];
    }
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats];
}

sub line_matches {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ $pat : index($line, $pat) >= 0;
}

sub value_contains {
    my ($val, $str) = @_;
    return 0 unless defined $val;
    return index($val, $str) >= 0 if !ref $val || ref $val eq 'Regexp';
    return scalar grep { value_contains($_, $str) } @$val if ref $val eq 'ARRAY';
    return 0;
}

# Every pattern must match some line: one test per pattern.
sub check_patterns_present {
    my ($name, $what, $file, $pats, $lines, $dry_run, $suffix) = @_;
    for my $pat (@{ pattern_list($pats) }) {
        next unless defined $pat;
        SKIP: {
            skip "$name - $what - tests skipped due to $dry_run", 1 if $dry_run;
            if (grep { line_matches($_, $pat) } @$lines) {
                pass("$name - pattern \"$pat\" matches a line in $file$suffix");
            } else {
                fail("$name - pattern \"$pat\" should match a line in $file$suffix");
                diag("last lines checked:\n" . tail_lines(join('', @$lines), 15));
            }
        }
    }
}

# No pattern may match any line: one test per pattern.
sub check_patterns_absent {
    my ($name, $what, $file, $pats, $lines, $dry_run, $suffix) = @_;
    for my $pat (@{ pattern_list($pats) }) {
        next unless defined $pat;
        my @hits = grep { line_matches($_, $pat) } @$lines;
        my $p = fmt_str("$pat");
        SKIP: {
            skip "$name - $what - tests skipped due to $dry_run", 1 if $dry_run;
            if (@hits) {
                fail("$name - pattern \"$p\" should not match any line in $file "
                     . "but matches line \"" . fmt_str($hits[0]) . "\"$suffix");
                diag("matching lines:\n" . tail_lines(join('', @hits), 10))
                    if @hits > 1;
            } else {
                pass("$name - pattern \"$p\" does not match a line in $file$suffix");
            }
        }
    }
}

sub check_grep_error_log {
    my ($block, $lines_ref, $dry_run, $rep_idx) = @_;
    my $name = $block->name;
    my $grep = $block->grep_error_log;
    if (!defined $grep) {
        bail_out("$name - No --- grep_error_log defined but --- grep_error_log_out is defined")
            if defined $block->grep_error_log_out;
        return;
    }
    $grep = $grep->[$rep_idx] if ref $grep eq 'ARRAY';
    return unless defined $grep;
    my $expected = $block->grep_error_log_out;
    bail_out("$name - No --- grep_error_log_out defined but --- grep_error_log is defined")
        unless defined $expected;
    $expected = $expected->[$rep_idx] if ref $expected eq 'ARRAY';

    SKIP: {
        skip "$name - error_log - tests skipped due to $dry_run", 1 if $dry_run;
        my $out = '';
        for my $line (@{ $lines_ref->() }) {
            my $hit = ref $grep ? ($line =~ $grep ? $& : undef)
                    : (index($line, $grep) >= 0 ? $grep : undef);
            $out .= "$hit\n" if defined $hit && $hit !~ /\n/;
        }
        is_str($out, $expected, "$name - grep_error_log_out (req $rep_idx)");
    }
}

sub check_error_log {
    my ($block, $dry_run, $rep_idx) = @_;
    my $name = $block->name;
    my $lines;
    my $get = sub { $lines //= error_log_data() };
    my $suffix = " (req $rep_idx)";

    check_grep_error_log($block, $get, $dry_run, $rep_idx);
    check_patterns_present($name, 'error_log', 'error.log', sec($block, 'error_log'),
                           $get->(), $dry_run, $suffix)
        if defined $block->error_log;
    check_patterns_absent($name, 'no_error_log', 'error.log', sec($block, 'no_error_log'),
                          $get->(), $dry_run, $suffix)
        if defined $block->no_error_log;

    return if $dry_run;
    warn_about_severe_lines($block, $get->());
    for my $line (@{ $get->() }) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp(my $l = $line);
            fail("$name - $l");
        }
    }
}

# [alert], [crit] and [emerg] lines are reported unless a section mentions them.
sub warn_about_severe_lines {
    my ($block, $lines) = @_;
    my $name = $block->name;
    for my $level (qw(alert crit emerg)) {
        next if value_contains(sec($block, 'error_log'), "[$level")
             || value_contains(sec($block, 'no_error_log'), "[$level");
        for my $line (grep { /\[$level\]/ } @$lines) {
            warn "WARNING: $name - " . fmt_str($line) . "\n";
        }
    }
}

sub check_access_log {
    my ($block, $dry_run, $rep_idx) = @_;
    my $name = $block->name;
    my $suffix = " (req $rep_idx)";
    my $lines;
    if (defined $block->access_log) {
        $lines //= access_log_data();
        check_patterns_present($name, 'access_log', 'access.log',
                               sec($block, 'access_log'), $lines, $dry_run, $suffix);
    }
    if (defined $block->no_access_log) {
        $lines //= access_log_data();
        check_patterns_absent($name, 'no_access_log', 'access.log',
                              sec($block, 'no_access_log'), $lines, $dry_run, $suffix);
    }
}

# --- shutdown_error_log of the previous block, once its nginx has stopped.
sub check_prev_block_shutdown_error_log {
    my $block = $PrevBlock;
    return unless $block && !$block->{_shutdown_checked};
    return unless defined $block->shutdown_error_log
               || defined $block->no_shutdown_error_log;
    $block->{_shutdown_checked} = 1;
    my $dry_run = ($UseHup || $ENV{TEST_NGINX_NO_CLEAN}) ? 'the HUP/no-clean mode' : 0;
    my $name = $block->name;
    my $lines = error_log_data();
    check_patterns_absent($name, 'no_shutdown_error_log', 'error.log',
                          sec($block, 'no_shutdown_error_log'), $lines, $dry_run, '')
        if defined $block->no_shutdown_error_log;
    check_patterns_present($name, 'shutdown_error_log', 'error.log',
                           sec($block, 'shutdown_error_log'), $lines, $dry_run, '')
        if defined $block->shutdown_error_log;
}

# ---------------------------------------------------------------------------
# Building requests
# ---------------------------------------------------------------------------

sub parse_more_headers {
    my ($in) = @_;
    my ($out, $is_chunked) = ('', 0);
    for my $header (split /\n+/, $in // '') {
        next if $header =~ /^\s*#/;
        my ($key, $val) = split /:\s*/, $header, 2;
        $val //= '';
        $is_chunked = 1 if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

sub more_headers_for {
    my ($block, $idx) = @_;
    my $more = $block->more_headers // '';
    if (ref $more eq 'ARRAY') {
        $more = $more->[$idx];
        bail_out($block->name . " - --- more_headers lacks data for request $idx")
            unless defined $more;
    }
    return parse_more_headers($more);
}

# Turns "METHOD [URI [VERSION]]\n[body]" (possibly split into packets) into
# a full HTTP request: Host, Connection, more_headers and Content-Length are
# added, and the packet boundaries are kept at the same places.
sub build_request {
    my ($name, $hdr, $is_chunked, $conn, $packets) = @_;
    my $orig = join '', @$packets;
    my ($line, $content) = $orig =~ /\A([^\n]*\n?)(.*)\z/s;
    $line =~ /^\s*(\S+) *(?:(\S+) *)?(?:(\S+) *)?\s*$/
        or bail_out("$name - Request line is not valid. Should be "
                    . "'meth [url [version]]' but got \"$line\".");
    my ($meth, $url, $ver) = ($1, $2 // '/', $3 // 'HTTP/1.1');
    bail_out("$name - Request line should be non-empty") unless length $meth;

    my $len_header = '';
    my $trimmed = 0;
    if (!$is_chunked && $content ne '' && $hdr !~ /(?:^|\n)Content-Length:/) {
        ($trimmed) = map { length } $content =~ /^(\s*)/;
        $content =~ s/^\s+|\s+$//gs;
        $len_header = "Content-Length: " . length($content) . "\r\n";
    }
    my $headers = '';
    $headers .= "Host: $ServerName\r\n" if $hdr !~ /(?:^|\n)Host:/mi;
    $headers .= "Connection: $conn\r\n" if $hdr !~ /(?:^|\n)Connection/mi;
    my $head = "$meth $url $ver\r\n$headers$hdr$len_header\r\n";

    # map the original packet boundaries onto the new request
    my (@cuts, $off);
    for my $p (@$packets[0 .. $#$packets - 1]) {
        $off += length $p;
        my $cut = $off < length $line
            ? min($off, length("$meth $url $ver"))
            : length($head) + min(length $content, max0($off - length($line) - $trimmed));
        push @cuts, $cut;
    }
    my $full = $head . $content;
    my ($prev, @out) = (0);
    for my $cut (@cuts, length $full) {
        $cut = $prev if $cut < $prev;
        push @out, substr($full, $prev, $cut - $prev);
        $prev = $cut;
    }
    return \@out;
}

sub max0 { $_[0] < 0 ? 0 : $_[0] }

# One request: an array of packets {value => ..., delay_before => ...}.
sub build_one_request {
    my ($block, $req, $idx) = @_;
    my $name = $block->name;
    my ($hdr, $is_chunked) = more_headers_for($block, $idx);
    bail_out("$name - request empty") unless defined $req;
    if (!ref $req) {
        return [{ value => build_request($name, $hdr, $is_chunked, 'close', [$req])->[0] }];
    }
    bail_out("$name - Invalid syntax. $req should be a string or an array of packets.")
        unless ref $req eq 'ARRAY';
    my @packets = map {
        ref $_ eq 'HASH' ? {%$_}
        : !ref $_        ? { value => $_ }
        : bail_out("$name - Invalid syntax. $_ should be a string or hash with value.")
    } @$req;
    my $built = build_request($name, $hdr, $is_chunked, 'close',
                              [map { $_->{value} } @packets]);
    $packets[$_]{value} = $built->[$_] for 0 .. $#packets;
    return \@packets;
}

# Returns a list of requests, each a list of packets.
sub get_req_from_block {
    my ($block) = @_;
    my $name = $block->name;

    if (defined(my $raw = $block->raw_request)) {
        my @bits = ref $raw eq 'ARRAY' ? @$raw : ($raw);
        return [[ map { ref $_ ? $_ : { value => $_ } } @bits ]];
    }

    if (my $reqs = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            unless ref $reqs eq 'ARRAY';
        my $all = '';
        for my $i (0 .. $#$reqs) {
            my ($hdr, $is_chunked) = more_headers_for($block, $i);
            my $conn = $i == $#$reqs ? 'close' : 'keep-alive';
            $all .= build_request($name, $hdr, $is_chunked, $conn, [$reqs->[$i]])->[0];
        }
        return [[{ value => $all }]];
    }

    my $request = $block->request;
    if (defined $block->request_eval) {
        $request = eval $block->request_eval;
        warn $@ if $@;
    }
    if (defined $request && !ref $request) {
        1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//gs;    # leading comments
    }
    if (ref $request eq 'ARRAY') {
        my $i = 0;
        return [ map { build_one_request($block, $_, $i++) } @$request ];
    }
    bail_out("$name - invalid --- request: MUST be string or array of requests")
        if ref $request;
    return [ build_one_request($block, $request, 0) ];
}

# ---------------------------------------------------------------------------
# The HTTP client
# ---------------------------------------------------------------------------

sub connect_server {
    my ($block, $timeout) = @_;
    my $addr = $block->server_addr_for_client // $ServerAddr;
    my $name = $block->name;
    my $deadline = time + 2;
    while (1) {
        my $sock = IO::Socket::INET->new(
            PeerAddr => $addr, PeerPort => $ServerPortForClient,
            Proto => 'tcp', Timeout => $timeout,
        );
        return $sock if $sock;
        my $err = $!;
        if (time >= $deadline || ($NginxPid && waitpid($NginxPid, WNOHANG) == $NginxPid)) {
            fail("$name - Can't connect to $addr:$ServerPortForClient: $err");
            diag(nginx_output_since($InstanceLogPos));
            return undef;
        }
        sleep 0.02;
    }
}

sub timed_out {
    my ($block) = @_;
    return if defined $block->abort;
    fail("ERROR: client socket timed out - " . $block->name . "\n");
}

sub write_packet {
    my ($sock, $data, $timeout) = @_;
    my $off = 0;
    my $sel = IO::Select->new($sock);
    while ($off < length $data) {
        return 'timeout' unless $sel->can_write($timeout);
        my $n = syswrite $sock, $data, length($data) - $off, $off;
        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            return "write failed: $!";
        }
        $off += $n;
    }
    return '';
}

sub read_response {
    my ($sock, $timeout, $name) = @_;
    my ($resp, $sel) = ('', IO::Select->new($sock));
    while (1) {
        return ($resp, 'timeout') unless $sel->can_read($timeout);
        my $n = sysread $sock, my $buf, 8192;
        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            warn "WARNING: $name - HTTP response read failure: $!\n";
            return ($resp, '');
        }
        return ($resp, '') if $n == 0;
        $resp .= $buf;
    }
}

# Sends one request (a list of packets) on a new connection and reads until
# the server closes it. Returns the raw response and whether it was HEAD.
sub send_request {
    my ($packets, $block, $timeout) = @_;
    my $name = $block->name;
    my $is_head = (join '', map { $_->{value} } @$packets) =~ /^\s*HEAD\s+/ ? 1 : 0;

    my $sock = connect_server($block, $timeout) or return (undef, $is_head);
    $sock->blocking(0);
    local $SIG{PIPE} = 'IGNORE';

    my $middle_delay = $block->raw_request_middle_delay;
    for my $i (0 .. $#$packets) {
        my $delay = $packets->[$i]{delay_before} // ($i ? $middle_delay : undef);
        sleep $delay if $delay;
        my $err = write_packet($sock, $packets->[$i]{value}, $timeout);
        if ($err eq 'timeout') {
            close $sock;
            timed_out($block);
            return ('', $is_head);
        }
        if ($err) {
            warn "$name - $err\n";
            last;
        }
    }
    if (defined(my $how = $block->shutdown)) {
        shutdown $sock, ($how =~ /^\s*$/ ? 1 : $how);
    }
    my ($resp, $err) = read_response($sock, $timeout, $name);
    close $sock;
    timed_out($block) if $err eq 'timeout';
    return ($resp, $is_head);
}

# Decodes a chunked body; returns (decoded, leftover) or () after a failure.
sub decode_chunked {
    my ($name, $raw) = @_;
    my $decoded = '';
    pos($raw) = 0;
    while (1) {
        if ($raw =~ /\G0[ \t]*(?:;[^\r\n]*)?\r\n((?:[^\r\n]+\r\n)*)\r\n/gc) {
            my $left = substr $raw, pos $raw;
            return ($decoded, length $left ? $left : undef);
        }
        if ($raw =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*(?:;[^\r\n]*)?\r\n/gc) {
            my $size = hex $1;
            my $start = pos $raw;
            if (length($raw) - $start < $size) {
                fail("$name - invalid chunked data received "
                     . "(not enough octets for the data section)");
                return ();
            }
            $decoded .= substr $raw, $start, $size;
            pos($raw) = $start + $size;
            if ($raw !~ /\G\r\n/gc) {
                fail("$name - invalid chunked data received (expected CRLF).");
                return ();
            }
            next;
        }
        if ($raw =~ /\G(.+)/gcs) {
            fail("$name - invalid chunked body received: $1");
        } else {
            fail("$name - no last chunk found - $raw");
        }
        return ();
    }
}

# Returns (HTTP::Response, raw header text, bytes after this response).
sub parse_response {
    my ($name, $raw, $is_head) = @_;
    my $raw_headers = $raw =~ /^(.*?\r\n)\r\n/s ? $1 : '';
    my $res = HTTP::Response->parse($raw);
    my $code = $res->code;
    if (defined $code && $code !~ /^\d+$/) {
        undef $code;
        $res->code(undef);
    }
    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $enc = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');
    my $left;
    if (defined $enc && $enc eq 'chunked') {
        my ($body, $rest) = decode_chunked($name, $res->content // '');
        return (undef, $raw_headers) unless defined $body;
        $res->content($body);
        $left = $rest;
    } elsif (defined $len && $len =~ /^\d+$/) {
        my $body = $res->content // '';
        if (length $body < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got " . length($body) . "\n" unless $is_head;
        } elsif (length $body > $len) {
            $left = substr $body, $len;
            $res->content(substr $body, 0, $len);
        }
    }
    return ($res, $raw_headers, $left);
}

# ---------------------------------------------------------------------------
# Response checks
# ---------------------------------------------------------------------------

sub get_indexed_value {
    my ($name, $value, $req_idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$req_idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    return $value->[0] if ref $value eq 'ARRAY';
    return $value;
}

sub subst_ports {
    my ($s) = @_;
    return $s if !defined $s || ref $s;
    $s =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
    $s =~ s/\$ServerPort\b/$ServerPort/g;
    return $s;
}

sub check_error_code {
    my ($block, $res, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->code) || '';
    SKIP: {
        skip "$name - tests skipped due to $dry_run", 1 if $dry_run;
        if (defined $block->error_code_like) {
            my $pat = get_indexed_value($name, sec($block, 'error_code_like'), $req_idx, $need_array);
            like($code, qr/$pat/sm, "$name - status code ok");
        } else {
            my $expected = defined $block->error_code
                ? get_indexed_value($name, sec($block, 'error_code'), $req_idx, $need_array)
                : 200;
            Test::More::is($code, $expected, "$name - status code ok");
        }
    }
}

sub check_raw_response_headers {
    my ($block, $raw_headers, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;
    for my $type (qw(like unlike)) {
        my $section = "raw_response_headers_$type";
        my $val = sec($block, $section);
        next unless defined $val;
        SKIP: {
            skip "$name - $section - tests skipped due to $dry_run", 1 if $dry_run;
            my $pat = get_indexed_value($name, $val, $req_idx, $need_array);
            my $cmp = $type eq 'like' ? \&Test::More::like : \&Test::More::unlike;
            $cmp->($raw_headers, qr/$pat/s, "$name - raw resp headers $type");
        }
    }
}

# "Name: value" lines ("!Name" = absent) -> ordered [name, value|undef] pairs
sub parse_headers {
    my ($s) = @_;
    my @pairs;
    for my $line (split /\n/, $s // '') {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        if ($line =~ s/^!\s*//) {
            push @pairs, [$line, undef];
        } else {
            my ($key, $val) = split /\s*:\s*/, $line, 2;
            push @pairs, [$key, $val // ''];
        }
    }
    return @pairs;
}

sub check_response_headers {
    my ($block, $res, $raw_headers, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;
    if (defined $block->response_headers) {
        my $spec = get_indexed_value($name, sec($block, 'response_headers'), $req_idx, $need_array);
        for my $pair (parse_headers($spec)) {
            my ($key, $val) = @$pair;
            SKIP: {
                skip "$name - response_headers - tests skipped due to $dry_run", 1 if $dry_run;
                if (!defined $val) {
                    Test::More::unlike($raw_headers, qr/^\s*\Q$key\E\s*:/ms,
                                       "$name - header $key not present in the raw headers");
                    next;
                }
                my $actual = $res ? scalar $res->header($key) : undef;
                Test::More::is($actual // '', subst_ports($val), "$name - header $key ok");
            }
        }
    } elsif (defined $block->response_headers_like) {
        my $spec = get_indexed_value($name, sec($block, 'response_headers_like'), $req_idx, $need_array);
        for my $pair (parse_headers($spec)) {
            my ($key, $val) = @$pair;
            my $actual = $res ? scalar $res->header($key) : undef;
            SKIP: {
                skip "$name - response_headers_like - tests skipped due to $dry_run", 1 if $dry_run;
                like($actual // '', qr/^$val$/, "$name - header $key like ok");
            }
        }
    }
}

sub run_body_filter {
    my ($name, $filter, $content) = @_;
    return $filter->($content) if ref $filter eq 'CODE';
    bail_out("$name - the --- response_body_filters section only supports "
             . "subroutine references and names") if ref $filter;
    my %builtin = (
        md5_hex  => \&Digest::MD5::md5_hex, sha1_hex => \&Digest::SHA::sha1_hex,
        uc => sub { uc $_[0] }, lc => sub { lc $_[0] },
        ucfirst => sub { ucfirst $_[0] }, lcfirst => sub { lcfirst $_[0] },
        length => sub { length $_[0] },
    );
    my $f = $builtin{$filter}
        or bail_out("$name - unknown filter, \"$filter\", specified in the "
                    . "--- response_body_filters section");
    return $f->($content);
}

sub transform_response_body {
    my ($block, $res, $req_idx) = @_;
    my $filters = $block->response_body_filters;
    return unless defined $filters && $res && defined $res->content;
    my $name = $block->name;
    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//g;
        $filters = [split /\s+/, $filters];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }
    if (ref $filters->[0] eq 'ARRAY') {    # one filter list per request
        $filters = $filters->[$req_idx]
            // bail_out("$name - no response_body_filters for request $req_idx");
    }
    my $content = $res->content;
    $content = run_body_filter($name, $_, $content) for @$filters;
    $res->content($content);
}

sub check_response_body {
    my ($block, $res, $dry_run, $req_idx, $rep_idx, $need_array) = @_;
    my $name = $block->name;
    my $content = $res ? $res->content : undef;
    my $which = "(repeated req $rep_idx, req $req_idx)";

    if (defined $block->response_body || defined $block->response_body_eval) {
        my $expected;
        if (defined $block->response_body_eval) {
            $expected = eval get_indexed_value($name, sec($block, 'response_body_eval'),
                                               $req_idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = get_indexed_value($name, sec($block, 'response_body'), $req_idx, $need_array);
        }
        if ($block->charset) {
            require Encode;
            Encode::from_to($expected, 'UTF-8', sec($block, 'charset'));
        }
        $expected = subst_ports($expected);
        SKIP: {
            skip "$name - response_body - tests skipped due to $dry_run", 1 if $dry_run;
            if (ref $expected) {
                like($content, $expected, "$name - response_body - like $which");
            } else {
                is_str($content, $expected,
                       "$name - response_body - response is expected $which");
            }
        }
    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my $type = defined $block->response_body_like ? 'like' : 'unlike';
        my $section = "response_body_$type";
        my $pat = subst_ports(get_indexed_value($name, sec($block, $section), $req_idx, $need_array));
        my $summary = trim($content) // '';
        $summary = substr($summary, 0, 200) . '...' if length $summary > 200;
        my $cmp = $type eq 'like' ? \&Test::More::like : \&Test::More::unlike;
        SKIP: {
            skip "$name - $section - tests skipped due to $dry_run", 1 if $dry_run;
            $cmp->($content, qr/$pat/s, "$name - $section - response is expected ($summary)");
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $content, $req_idx, $rep_idx, $dry_run);
    }
}

sub check_response {
    my ($block, $res, $raw_headers, $dry_run, $req_idx, $rep_idx, $need_array) = @_;
    check_error_code($block, $res, $dry_run, $req_idx, $need_array);
    check_raw_response_headers($block, $raw_headers, $dry_run, $req_idx, $need_array);
    check_response_headers($block, $res, $raw_headers, $dry_run, $req_idx, $need_array);
    transform_response_body($block, $res, $req_idx);
    check_response_body($block, $res, $dry_run, $req_idx, $rep_idx, $need_array);
}

sub check_logs {
    my ($block, $dry_run, $rep_idx) = @_;
    sleep sec($block, 'wait') if sec($block, 'wait');
    check_error_log($block, $dry_run, $rep_idx);
    check_access_log($block, $dry_run, $rep_idx) unless defined $block->ignore_response;
}

# Sends the block's requests and checks the responses and logs. As in the
# real one, the logs are checked after each request of a multi-request block
# (each check seeing only the lines logged since the previous one).
sub run_test_helper {
    my ($block, $dry_run, $rep_idx) = @_;
    my $name = $block->name;
    my $reqs = get_req_from_block($block);
    bail_out("$name - request empty") unless @$reqs;

    my $timeout = parse_time(sec($block, 'timeout')) // $Timeout;
    my $pipelined = $block->pipelined_requests;
    my $need_array = $pipelined ? 1 : @$reqs > 1;
    my $req_idx = 0;

    for my $i (0 .. $#$reqs) {
        my ($raw, $is_head) = $dry_run
            ? ("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0)
            : send_request($reqs->[$i], $block, $timeout);
        $raw //= '';
        my $n = $pipelined ? scalar @$pipelined : 0;
        while (1) {
            my ($res, $raw_headers, $left);
            if (!defined $block->ignore_response) {
                if (defined $block->http09) {
                    $res = HTTP::Response->new(200, 'OK', [], $raw);
                    $raw_headers = '';
                } else {
                    ($res, $raw_headers, $left) = parse_response($name, $raw, $is_head);
                }
            }
            if ($n) {
                $raw = $left // '';
                $n--;
            } elsif (defined $left && length $left) {
                (my $l = $left) =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                warn "WARNING: $name - unexpected extra bytes after the response: \"$l\"\n";
            }
            check_response($block, $res, $raw_headers // '', $dry_run, $req_idx,
                           $rep_idx, $need_array)
                unless defined $block->ignore_response;
            check_logs($block, $dry_run, $rep_idx) if $n || $i < $#$reqs;
            $req_idx++;
            last unless $n;
        }
    }
    check_logs($block, $dry_run, $rep_idx);
}

# ---------------------------------------------------------------------------
# Skipping (--- skip_nginx, skip_nginx2, skip_eval, skip_openssl, todo)
# ---------------------------------------------------------------------------

sub version_cmp_true {
    my ($have, $op, @ver) = @_;
    return $op =~ /^</ if !defined $have;
    my $want = get_canon_version(@ver);
    return $op eq '<'  ? $have <  $want : $op eq '<=' ? $have <= $want
         : $op eq '>'  ? $have >  $want : $have >= $want;
}

# Returns ($should_skip, $count, $reason, $should_todo).
sub skip_spec {
    my ($block) = @_;
    my $name = $block->name;
    my $ver_re = qr/([<>]=?)\s*(\d+)\.(\d+)\.(\d+)/;

    if (defined(my $spec = $block->skip_eval)) {
        if ($spec =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            my ($count, $code) = ($1, $2);
            my $skip = eval $code;
            bail_out("$name - skip_eval - failed to eval the Perl code \"$code\": $@") if $@;
            return (1, $count, 'skip_eval') if $skip;
        }
    }
    if (defined(my $spec = $block->skip_nginx)) {
        $spec =~ /^\s*(\d+)\s*:\s*$ver_re(?:\s*:\s*(.*))?\s*$/
            or bail_out("$name - Invalid --- skip_nginx spec: $spec");
        my ($count, $op, @v) = ($1, $2, $3, $4, $5);
        my $reason = $6 || "nginx version $op $v[0].$v[1].$v[2]";
        return (1, $count, $reason) if version_cmp_true($NginxVersion, $op, @v);
    } elsif (defined(my $spec2 = $block->skip_nginx2)) {
        $spec2 =~ /^\s*(\d+)\s*:\s*$ver_re\s*(or|and)\s*$ver_re(?:\s*:\s*(.*))?\s*$/
            or bail_out("$name - Invalid --- skip_nginx2 spec: $spec2");
        my ($count, $hit1, $hit2) = ($1, version_cmp_true($NginxVersion, $2, $3, $4, $5),
                                     version_cmp_true($NginxVersion, $7, $8, $9, $10));
        my $hit = $6 eq 'or' ? ($hit1 || $hit2) : ($hit1 && $hit2);
        return (1, $count, $11 || 'various reasons') if $hit || !defined $NginxVersion;
    }
    if (defined(my $spec = $block->skip_openssl)) {
        $spec =~ /^\s*(\d+)\s*:\s*$ver_re([a-z])?(?:\s*:\s*(.*))?\s*$/
            or bail_out("$name - Invalid --- skip_openssl spec: $spec");
        my ($count, $op, @v) = ($1, $2, $3, $4, $5);
        my $want = get_canon_version(@v) . (defined $6 ? sprintf('%03d', ord($6) - 97) : '');
        my $hit = !defined $OpenSSLVersion
                  || eval "$OpenSSLVersion $op $want";
        return (1, $count, $7 || "OpenSSL version $op $v[0].$v[1].$v[2]") if $hit;
    }
    if (defined(my $todo = $block->todo)) {
        $todo =~ /^\s*(\d+)\s*:\s*(.*)/s
            or bail_out("$name - Invalid --- todo spec: $todo");
        return (0, $1, $2, 1);
    }
    return (0);
}

# ---------------------------------------------------------------------------
# Running the blocks
# ---------------------------------------------------------------------------

sub run_tests () {
    detect_versions();
    bail_out("Cannot find the nginx executable \"$NginxBinary\"")
        unless $NoNginxManager || can_run($NginxBinary);
    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort
        unless defined $ENV{TEST_NGINX_SERVER_PORT};
    local $SIG{INT} = local $SIG{TERM} = sub {
        stop_nginx('interrupted');
        exit 1;
    };

    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;
    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value(name => "$0 " . $block->name);
        run_test($block);
        $PrevBlock = $block;
    }
    cleanup();
}

sub run_test ($) {
    my ($block) = @_;
    return if defined $block->SKIP;
    my $name = $block->name;
    my $rand_ports = {};
    my $config = expand_env_in_text(sec($block, 'config'), $name, $rand_ports);
    local $LogLevel = $block->log_level || $LogLevel;
    my ($should_skip, $skip_count, $reason, $should_todo) = skip_spec($block);

    if (!$should_skip && defined $block->must_die) {
        run_must_die($block, $config, $rand_ports);
        return;
    }
    # a dry run sends no request and reports each check as skipped
    my $dry_run = unimplemented($block);
    if (!$NoNginxManager && !$should_skip) {
        my $started = prepare_nginx($block, $config, $rand_ports) or return;
        $dry_run ||= $started if $started ne '1';
    }
    if ($block->init) {
        eval $block->init;
        bail_out("$name - init failed: $@") if $@;
    }

    $ErrLogFilePos = $InstanceLogPos;
    for my $i (1 .. $RepeatEach) {
        write_user_files($block, $rand_ports) if $i > 1 && !$should_skip;
        if ($should_skip) {
            SKIP: { skip("$name - $reason", $skip_count) }
        } elsif ($should_todo) {
            TODO: { todo_skip("$name - $reason", $skip_count) }
        } else {
            run_test_helper($block, $dry_run, $i - 1);
            skip_unimplemented_checks($block, $dry_run);
        }
    }
    append_to_total_error_log($name);
}

# Sections of the real one that this harness does not implement: a block
# using one is a dry run, as one whose nginx lacks a directive.  Returns
# the reason, or '' when the block uses none.
my @Unimplemented = qw(tcp_listen udp_listen http2 http3 curl);

sub unimplemented {
    my ($block) = @_;
    my @used = grep { defined $block->$_ } @Unimplemented;
    return '' unless @used;
    return join(', ', map { "--- $_" } @used)
           . ' (not implemented by t/harness)';
}

# The tests the real one adds for those sections and for --- stap (run
# only with TEST_NGINX_USE_STAP), reported as skipped so that a plan
# counted for the real one still matches.
sub skip_unimplemented_checks {
    my ($block, $dry_run) = @_;
    my $name = $block->name;
    for my $section (qw(tcp_query tcp_query_len udp_query)) {
        next unless defined $block->$section;
        SKIP: { skip("$name - $section - tests skipped due to $dry_run", 1) }
    }
    if (defined $block->stap) {
        my $why = $dry_run || 'env TEST_NGINX_USE_STAP is not set';
        SKIP: { skip("$name - stap_out - tests skipped due to $why", 1) }
    }
}

# Makes sure an nginx with the block's config is running: true when it
# is, the reason for a dry run when it lacks a directive (see
# start_nginx), false on failure.
sub prepare_nginx {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;
    if (!defined $config) {
        # no --- config: keep using the nginx of the previous block
        bail_out("$name - No '--- config' section specified and could not get "
                 . "previous one. Use TEST_NGINX_NO_NGINX_MANAGER ?")
            unless defined $PrevConfig;
        return 1;
    }
    my $changed = !defined $PrevConfig || $config ne $PrevConfig;
    return 1 unless $changed || $ForceRestartOnTest || !$NginxPid;
    $PrevConfig = $config;

    $ConfigVersion = gen_rand_str(10) if $UseHup;
    my $ok = ($UseHup && $NginxPid && !$FirstTime)
        ? reload_nginx($block, $config, $rand_ports)
        : start_nginx($block, $config, $rand_ports);
    $FirstTime = 0;
    # nginx runs without the block's config: the next block starts anew
    undef $PrevConfig if $ok && $ok ne '1';
    return $ok;
}

# --- must_die: nginx has to fail to start, repeat_each times.
sub run_must_die {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;
    my $must_die = $block->must_die;

    stop_nginx($name);
    kill_stale_nginx() if $FirstTime;
    $FirstTime = 0;
    check_prev_block_shutdown_error_log();
    setup_server_root(0);
    write_user_files($block, $rand_ports);
    write_config_file($block, $config, $rand_ports);
    $PrevConfig = $config;
    $InstanceLogPos = $ErrLogFilePos = 0;

    for my $i (0 .. $RepeatEach - 1) {
        my $pid = spawn_nginx();
        my ($state, $status) = wait_for_nginx($pid, $StartTimeout);
        my $died = $state eq 'exited';
        $status = 0 unless $died;
        if ($died && ($status & 127)) {
            fail("$name - nginx " . describe_status($status));
        } elsif (looks_like_number($must_die)) {
            Test::More::is($status >> 8, $must_die, "$name - die with the expected exit code");
        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }
        check_error_log($block, 0, $i);
        next if $died;
        warn "WARNING: $name - nginx must die but it does not; killing it (req $i)\n";
        kill_child($pid, $name);
    }
}

sub append_to_total_error_log {
    my ($name) = @_;
    my $total = $ENV{TEST_NGINX_ERROR_LOG} or return;
    my $log = slurp($ErrLogFile, $InstanceLogPos);
    return unless length $log;
    open my $out, '>>', $total or bail_out("Failed to append to $total: $!");
    print $out "\n=== $name\n", $log;
    close $out;
}

# ---------------------------------------------------------------------------
# The real module keeps its settings in Test::Nginx::Util; test files may
# reach for them there (e.g. Test::Nginx::Util::server_root()).
# ---------------------------------------------------------------------------

sub sleep_time { return $TestNginxSleep }

{
    no strict 'refs';
    for my $sub (qw(
        env_to_nginx is_str check_accum_error_log no_long_string server_addr
        server_name bail_out add_cleanup_handler run_tests run_test
        add_block_preprocessor timeout worker_connections workers master_on
        master_off config_preamble repeat_each master_process_enabled
        log_level no_shuffle no_root_location html_dir server_root
        server_port server_port_for_client no_nginx_manager use_hup
        error_log_data access_log_data parse_time trim sleep_time verbose
        setup_server_root write_config_file can_run))
    {
        *{"Test::Nginx::Util::$sub"} = \&{$sub};
    }
    for my $var (qw(
        ServerPort ServerPortForClient ServRoot LogDir ErrLogFile AccLogFile
        HtmlDir ConfDir ConfFile PidFile NginxBinary NginxVersion
        NginxRawVersion OpenSSLVersion RepeatEach Timeout LogLevel Workers
        WorkerConnections MasterProcessEnabled UseHup ServerAddr ServerName
        TestNginxSleep NoNginxManager NoShuffle NoRootLocation NoLongString
        CheckAccumErrLog))
    {
        *{"Test::Nginx::Util::$var"} = \${$var};
    }
    $INC{'Test/Nginx/Util.pm'} //= __FILE__;
}

1;
__END__

=encoding utf-8

=head1 NAME

Test::Nginx::Socket - local re-implementation of openresty's data-driven
nginx test scaffold (used when the CPAN module is not installed)

=head1 SYNOPSIS

    use Test::Nginx::Socket 'no_plan';

    no_shuffle();
    run_tests();

    __DATA__

    === TEST 1: sanity
    --- config
        location = /t {
            return 200 "hello\n";
        }
    --- request
    GET /t
    --- response_body
    hello
    --- no_error_log
    [error]

=head1 DESCRIPTION

This module implements the test-block format of openresty's
L<Test::Nginx::Socket> (CPAN distribution Test-Nginx, version 0.29/0.30)
from its documentation, so that test files written for it pass unchanged
with either implementation. It inherits from L<Test::Base> exactly as the
real one does, so C<blocks()>, the section filters (C<eval>, C<chomp>, ...),
C<--- ONLY>, C<--- SKIP>, C<--- LAST> and subclassing with
C<use Test::Nginx::Socket -Base;> behave identically.

=head2 Implemented

Functions: C<run_tests>, C<repeat_each>, C<no_shuffle>, C<master_on>,
C<master_off>, C<master_process_enabled>, C<workers>, C<worker_connections>,
C<log_level>, C<no_long_string>, C<no_root_location>, C<env_to_nginx>,
C<use_hup>, C<server_port>, C<server_port_for_client>, C<server_addr>,
C<server_name>, C<html_dir>, C<server_root>, C<timeout>,
C<add_block_preprocessor>, C<add_cleanup_handler>, C<add_response_body_check>,
C<check_accum_error_log>, C<config_preamble>, C<no_nginx_manager>, C<is_str>,
C<bail_out>, plus everything L<Test::Base> exports (C<plan>, C<blocks>, ...).

Sections: C<config>, C<http_config>, C<main_config>, C<post_main_config>,
C<server_name>, C<log_level>, C<error_log_file>, C<user_files>, C<init>,
C<request> (string, array of requests, requests split into packets with
C<delay_before>), C<request_eval>, C<raw_request>, C<raw_request_middle_delay>,
C<pipelined_requests>, C<more_headers> (string or one per request),
C<error_code>, C<error_code_like>, C<response_headers> (C<!Name> = absent),
C<response_headers_like>, C<raw_response_headers_like>/C<_unlike>,
C<response_body>, C<response_body_eval>, C<response_body_like>/C<_unlike>
(C</s>), C<response_body_filters>, C<charset>, C<error_log>, C<no_error_log>,
C<grep_error_log>, C<grep_error_log_out>, C<access_log>, C<no_access_log>,
C<shutdown_error_log>, C<no_shutdown_error_log>, C<wait>, C<timeout>,
C<abort>, C<shutdown>, C<ignore_response>, C<http09>, C<must_die>,
C<skip_nginx>, C<skip_nginx2>, C<skip_eval>, C<skip_openssl>, C<todo>,
C<server_addr_for_client>.

Environment: C<TEST_NGINX_BINARY> (default C<nginx> in C<PATH>, else
F</usr/sbin/nginx>), C<TEST_NGINX_SERVROOT>, C<TEST_NGINX_PORT>,
C<TEST_NGINX_SERVER_PORT>, C<TEST_NGINX_CLIENT_PORT>,
C<TEST_NGINX_LOAD_MODULES>, C<TEST_NGINX_USE_HUP>, C<TEST_NGINX_NO_CLEAN>,
C<TEST_NGINX_LOG_LEVEL>, C<TEST_NGINX_TIMEOUT>, C<TEST_NGINX_SLEEP>,
C<TEST_NGINX_NO_SHUFFLE>, C<TEST_NGINX_MASTER_PROCESS>,
C<TEST_NGINX_FORCE_RESTART_ON_TEST>, C<TEST_NGINX_RANDOMIZE>,
C<TEST_NGINX_WORKER_USER>, C<TEST_NGINX_EVENT_TYPE>,
C<TEST_NGINX_POSTPONE_OUTPUT>, C<TEST_NGINX_REUSE_PORT>,
C<TEST_NGINX_ERROR_LOG>, C<TEST_NGINX_CHECK_ACCUM_ERR_LOG>,
C<TEST_NGINX_NO_NGINX_MANAGER>, C<TEST_NGINX_FAST_SHUTDOWN>,
C<TEST_NGINX_VERBOSE>. C<$TEST_NGINX_XXX> is replaced by the environment
value in C<config>, C<http_config>, C<main_config>, C<post_main_config> and
C<user_files> (as in the real one; a missing variable bails out), and
C<$TEST_NGINX_RAND_PORT_N> by a free port, the same one for the same N
within a test block.

As in the real one, the logs are checked after I<each> request of a block
with several requests (C<--- request eval [...]>, C<--- pipelined_requests>),
and each check only sees the lines logged since the previous check (unless
C<check_accum_error_log()>): a C<--- error_log> pattern logged once, before
the first request, fails the checks after the later requests.
C<$TEST_NGINX_RAND_PORT_N> ports are chosen anew for each test block.

The settings and helpers of the real C<Test::Nginx::Util> (C<server_root()>,
C<$Test::Nginx::Util::ServerPort>, ...) are aliased into that package.

=head2 Deliberate differences

=over

=item *

Without C<TEST_NGINX_SERVER_PORT>/C<TEST_NGINX_PORT> a free random port is
used instead of 1984 (and exported as C<TEST_NGINX_SERVER_PORT>).

=item *

nginx runs in the foreground (C<daemon off>) as a child of the test process
and is stopped with QUIT (TERM, then KILL after timeouts) and C<waitpid>.
It is ready once it has written its pid file (its sockets are then bound).
nginx's start-up messages go to F<logs/error.log> (C<-e>), its stderr to
F<logs/nginx.stderr>.

=item *

The generated nginx.conf sets all temp paths under the server root, and
C<load_module> lines (C<TEST_NGINX_LOAD_MODULES>) come first in the file
(the real one appends them after C<--- main_config>).

=item *

If nginx fails to start (without C<--- must_die>) or to reload in HUP mode,
the block fails with nginx's output and the run goes on with the next block
(the real one bails out of the whole run).

=item *

C<no_error_log> reports one failure per pattern (with the first matching
line), not one per matching line, so the test count does not change.
Failed string comparisons of bodies also print a unified diff.

=item *

The HUP mode keeps one error.log and reads from the offset at which the
reload began, instead of deleting the file and sending USR1.

=back

As in the real one, with C<TEST_NGINX_IGNORE_MISSING_DIRECTIVES> set a
block whose nginx fails to start (or, in HUP mode, to reload) on an
C<unknown directive> is a dry run: its C<--- init> runs, no request is
sent, and each of its checks is reported as skipped "due to the lack of
directive NAME".  Without it such a block fails.

=head2 Not implemented

C<tcp_listen>/C<udp_listen> and their C<*_reply>/C<*_query> sections, and
HTTP/2 and HTTP/3 through curl (C<http2>, C<http3>, C<curl>): a block using
one is a dry run as above, each check reported as skipped, C<tcp_query>,
C<tcp_query_len> and C<udp_query> included, so that a plan counted for the
real one still matches.  C<stap*>: as in the real one without
C<TEST_NGINX_USE_STAP>, the block runs and its C<stap_out> test is
reported as skipped.  L<Test::Nginx::LWP>: a file using it is skipped
(C<1..0 # SKIP>).  Also not implemented: valgrind, rr, the check-leak and
benchmark modes, C<todo_nginx>, C<skip_slave>, C<reload_fails>.

=cut

# nginx.sh: shell helpers for scripts that run nginx instances of their own
# (bench/run.sh, soak/run.sh).  Source it.  Their Perl and Python
# counterparts: DiscoveryTest.pm (temp_paths) and discovery_test.py.

# nginx_stop DIR: stops the nginx whose pid file is DIR/nginx.pid, quickly
# (TERM), and for good after 10 s (KILL).
nginx_stop() {
    local dir=$1 pid i
    [ -s "$dir/nginx.pid" ] || return 0
    pid=$(cat "$dir/nginx.pid")
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# nginx_temp_paths DIR: http{} lines keeping every temporary file under
# DIR/tmp: Debian's defaults point to /var/lib/nginx.
nginx_temp_paths() {
    local dir=$1
    cat <<EOF
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
EOF
}

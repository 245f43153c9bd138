#!/bin/sh
# Entrypoint of the docker:dind stand-in; behaves like the official image's:
# - no arguments, or arguments starting with "-": they are dockerd flags;
# - DOCKER_TLS_CERTDIR set (default /certs): a CA, a server and a client certificate are
#   made with openssl in $DOCKER_TLS_CERTDIR/{ca,server,client} and dockerd serves TLS on
#   :2376 (clients use the files in .../client: ca.pem cert.pem key.pem);
# - DOCKER_TLS_CERTDIR empty: plain TCP on :2375 (dockerd then waits ~15 s on purpose).
# - DOCKERD_CONTAINERD_SNAPSHOTTER=1: the containerd image store, through
#   /etc/docker/daemon.json (Docker 29's default for new installs, Docker Desktop's).
# - DOCKER_MIN_API_VERSION (read by dockerd itself, Docker 28+): the oldest API version
#   the engine accepts; 1.44 behaves as Engine 29 does.
# - cgroup v2 with a cgroup namespace of its own: its processes move to a child group and
#   every controller is delegated, so that an engine nested in this one can start.
set -eu

certdir="${DOCKER_TLS_CERTDIR:-}"

# Every address the server certificate must name: the usual names and this container's IPs.
_san() {
    san="DNS:docker,DNS:localhost,DNS:$(hostname),IP:127.0.0.1"
    for ip in $(hostname -I 2>/dev/null || hostname -i); do
        san="$san,IP:$ip"
    done
    echo "$san"
}

# ECDSA P-256 keys: as strong as RSA 3072 for TLS, and made in milliseconds, not seconds.
_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

_tls_generate() {
    dir="$1"
    mkdir -p "$dir/ca" "$dir/server" "$dir/client"
    if [ ! -s "$dir/ca/key.pem" ] || [ ! -s "$dir/ca/cert.pem" ]; then
        _key "$dir/ca/key.pem"
        openssl req -new -x509 -days 825 -sha256 -subj "/CN=docker:dind CA" \
            -key "$dir/ca/key.pem" -out "$dir/ca/cert.pem"
    fi
    # Server and client certificates are made on each start: the container's IP changes.
    for side in server client; do
        _key "$dir/$side/key.pem"
        if [ "$side" = server ]; then
            cn=docker
            printf 'extendedKeyUsage = serverAuth\nsubjectAltName = %s\n' "$(_san)" \
                > "$dir/$side/openssl.cnf"
        else
            cn="docker:dind client"
            printf 'extendedKeyUsage = clientAuth\n' > "$dir/$side/openssl.cnf"
        fi
        openssl req -new -sha256 -subj "/CN=$cn" -key "$dir/$side/key.pem" \
            -out "$dir/$side/csr.pem"
        openssl x509 -req -days 825 -sha256 -in "$dir/$side/csr.pem" \
            -CA "$dir/ca/cert.pem" -CAkey "$dir/ca/key.pem" -CAcreateserial \
            -extfile "$dir/$side/openssl.cnf" -out "$dir/$side/cert.pem" 2>/dev/null
        cp "$dir/ca/cert.pem" "$dir/$side/ca.pem"
        rm -f "$dir/$side/csr.pem" "$dir/$side/openssl.cnf"
    done
    # The client key of this throwaway engine is for whoever started the container (the
    # certificate directory is usually bind-mounted from that user's workspace).
    chmod 0644 "$dir/client/key.pem"
    chmod 0600 "$dir/server/key.pem" "$dir/ca/key.pem"
}

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    if [ -n "$certdir" ]; then
        _tls_generate "$certdir"
        set -- dockerd \
            --host=unix:///var/run/docker.sock \
            --host=tcp://0.0.0.0:2376 \
            --tlsverify \
            --tlscacert="$certdir/server/ca.pem" \
            --tlscert="$certdir/server/cert.pem" \
            --tlskey="$certdir/server/key.pem" \
            "$@"
    else
        set -- dockerd --host=unix:///var/run/docker.sock --host=tcp://0.0.0.0:2375 "$@"
    fi
fi

if [ "$1" = dockerd ]; then
    if [ "${DOCKERD_CONTAINERD_SNAPSHOTTER:-0}" = 1 ]; then
        mkdir -p /etc/docker
        echo '{"features": {"containerd-snapshotter": true}}' > /etc/docker/daemon.json
    fi
    # Use the legacy iptables backend where nftables does not work in this kernel.
    if ! iptables -nL >/dev/null 2>&1 && iptables-legacy -nL >/dev/null 2>&1; then
        update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
        update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null || true
    fi
    # cgroup v2 in a cgroup namespace of its own (--privileged on a cgroup v2 host): this
    # container's processes sit in the root of its cgroup tree, where no controller can be
    # handed down to child groups while a process is there. Move them into a child group
    # first, then delegate every controller, so that dockerd can make a group per container
    # (what the official docker:dind does too). Done only where PID 1 is in the root group:
    # never on a host's tree bind-mounted at /sys/fs/cgroup.
    if [ -f /sys/fs/cgroup/cgroup.controllers ] && [ "$(cat /proc/1/cgroup)" = "0::/" ] \
            && grep -qx 1 /sys/fs/cgroup/cgroup.procs 2>/dev/null; then
        mkdir -p /sys/fs/cgroup/init
        for pid in $(cat /sys/fs/cgroup/cgroup.procs); do
            echo "$pid" > /sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true
        done
        sed -e 's/ / +/g' -e 's/^/+/' /sys/fs/cgroup/cgroup.controllers \
            > /sys/fs/cgroup/cgroup.subtree_control || true
    fi
    # Stale pid files from a previous run of this container would stop dockerd.
    rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
fi

exec "$@"

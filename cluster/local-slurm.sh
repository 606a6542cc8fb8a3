#!/usr/bin/env bash
# A private single-node SLURM cluster on this machine, for testing the pipeline against a real
# scheduler: slurmctld, slurmd, munge, slurmdbd on a MariaDB of its own, and fake GPUs as GRES
# (character devices with no CUDA behind them). Needs root.
#
#   cluster/local-slurm.sh install  # Debian's packages, if missing (the only system change)
#   cluster/local-slurm.sh start    # idempotent: a running cluster is left as it is
#   cluster/local-slurm.sh stop     # stops every daemon by the pid in its pid file
#   cluster/local-slurm.sh status
#   cluster/local-slurm.sh env      # SLURM_CONF=... and PATH=<its client commands>:...: with
#                                   # both set, SLURM's commands (in jobs too) use this cluster
#
# Everything else lives in LLMDISSECT_SLURM_DIR (default /var/tmp/llmdissect-slurm): its own
# slurm.conf, slurmdbd.conf and gres.conf (found through SLURM_CONF), munge key and socket,
# MariaDB data folder, socket and port, daemon ports, pid files, logs, spool and fake devices.
# Nothing in /etc, /run, /var/lib or /var/log is read or written, and a SLURM, munge or MariaDB
# the host already runs is not touched. LLMDISSECT_SLURM_GPUS (default 2): the node's fake GPUs.
set -euo pipefail

ROOT=${LLMDISSECT_SLURM_DIR:-/var/tmp/llmdissect-slurm}
GPUS=${LLMDISSECT_SLURM_GPUS:-2}
CLUSTER=llmdissect
PARTITION=main
HOST=$(hostname -s)
# ports away from SLURM's (6817-6819) and MariaDB's (3306) defaults, so a real one can run beside
CTLD_PORT=16817
SLURMD_PORT=16818
DBD_PORT=16819
DB_PORT=16306
DB_USER=slurm
DB_PASS=slurm-local-only
DAEMONS=(slurmd slurmctld slurmdbd mariadbd munged)  # stop order

ETC=$ROOT/etc
MUNGE_SOCKET=$ROOT/munge/munge.socket.2
DB_SOCKET=$ROOT/mysql/mysqld.sock
export SLURM_CONF=$ETC/slurm.conf

say() { echo "local-slurm: $*" >&2; }
die() { say "$*"; exit 1; }

pid_of() { cat "$ROOT/run/$1.pid" 2>/dev/null || true; }
# alive: the pid file's process exists and is that daemon (a stale file may name a reused pid)
alive() {
  local pid
  pid=$(pid_of "$1")
  [[ -n "$pid" ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$1" ]]
}

wait_for() {  # wait_for <seconds> <what> <command...>
  local limit=$1 what=$2
  shift 2
  for _ in $(seq "$((limit * 4))"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  die "$what did not come up within ${limit}s (logs: $ROOT/log)"
}

missing_tools() {
  for tool in slurmctld slurmd slurmdbd munged mariadbd mariadb-install-db; do
    command -v "$tool" >/dev/null || echo "$tool"
  done
}

install() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages)"
  local missing
  missing=$(missing_tools | xargs)
  [[ -z "$missing" ]] && return
  say "installing slurm-wlm, munge, slurmdbd, mariadb-server (missing: $missing)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge slurmdbd mariadb-server >/dev/null
}

db() { mariadb --no-defaults --socket="$DB_SOCKET" -uroot "$@"; }

start_munge() {
  alive munged && return
  mkdir -p "$ROOT/munge"
  [[ -s "$ROOT/munge/munge.key" ]] || dd if=/dev/urandom bs=1 count=1024 of="$ROOT/munge/munge.key" status=none
  chown -R munge:munge "$ROOT/munge" && chmod 755 "$ROOT/munge" && chmod 400 "$ROOT/munge/munge.key"
  # --force: the folder's parents (/var/tmp) are world-writable, which munged otherwise refuses
  runuser -u munge -- munged --force --key-file="$ROOT/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$ROOT/run/munged.pid" --log-file="$ROOT/log/munged.log" \
    --seed-file="$ROOT/munge/munged.seed"
  wait_for 10 munged test -S "$MUNGE_SOCKET"
}

start_mariadb() {
  if ! alive mariadbd; then
    mkdir -p "$ROOT/mysql/tmp"
    chown -R mysql:mysql "$ROOT/mysql"
    if [[ ! -d "$ROOT/mysql/data/mysql" ]]; then
      mariadb-install-db --no-defaults --user=mysql --datadir="$ROOT/mysql/data" \
        >"$ROOT/log/mariadb-install.log" 2>&1
    fi
    setsid mariadbd --no-defaults --user=mysql --datadir="$ROOT/mysql/data" \
      --socket="$DB_SOCKET" --port="$DB_PORT" --bind-address=127.0.0.1 \
      --tmpdir="$ROOT/mysql/tmp" --pid-file="$ROOT/run/mariadbd.pid" \
      --log-error="$ROOT/log/mariadbd.log" >/dev/null 2>&1 </dev/null &
    wait_for 30 MariaDB db -e "select 1"
  fi
  # its own user in its own server: another `slurm` user of the host's MariaDB is never seen
  db -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO '$DB_USER'@'127.0.0.1';"
}

write_configs() {
  local memory
  memory=$(($(free -m | awk '/^Mem:/ {print $2}') - 1024))
  mkdir -p "$ETC" "$ROOT/spool/ctld" "$ROOT/spool/d" "$ROOT/dev"
  chown -R slurm:slurm "$ROOT/spool"
  for i in $(seq 0 $((GPUS - 1))); do
    [[ -c "$ROOT/dev/gpu$i" ]] || mknod -m 666 "$ROOT/dev/gpu$i" c 1 3
  done
  cat >"$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdAddr=127.0.0.1
DbdHost=$HOST
DbdPort=$DBD_PORT
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageLoc=slurm_acct_db
StorageUser=$DB_USER
StoragePass=$DB_PASS
LogFile=$ROOT/log/slurmdbd.log
PidFile=$ROOT/run/slurmdbd.pid
EOF
  chown slurm:slurm "$ETC/slurmdbd.conf" && chmod 600 "$ETC/slurmdbd.conf"
  cat >"$ETC/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
SlurmUser=slurm
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# connections to slurmdbd take their munge socket from here, not from AuthInfo
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=300
KillWait=10
GresTypes=gpu
StateSaveLocation=$ROOT/spool/ctld
SlurmdSpoolDir=$ROOT/spool/d
SlurmctldPidFile=$ROOT/run/slurmctld.pid
SlurmdPidFile=$ROOT/run/slurmd.pid
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd.log
NodeName=$HOST Gres=gpu:$GPUS CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  {
    echo "AutoDetect=off"
    echo "NodeName=$HOST Name=gpu File=$ROOT/dev/gpu[0-$((GPUS - 1))]"
  } >"$ETC/gres.conf"
  write_client_wrappers
}

# SLURM's client commands bound to this cluster: Snakemake's job step plugin drops every SLURM_*
# variable (SLURM_CONF too) before its srun, so inside jobs only PATH can point at this cluster.
write_client_wrappers() {
  mkdir -p "$ROOT/bin"
  local command real
  for command in srun sbatch salloc squeue scancel sacct sacctmgr sinfo scontrol sstat; do
    real=$(command -v "$command") || continue
    [[ "$real" == "$ROOT/bin/"* ]] && continue
    printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$SLURM_CONF" "$real" >"$ROOT/bin/$command"
    chmod 755 "$ROOT/bin/$command"
  done
}

start_slurm() {
  if ! alive slurmdbd; then
    slurmdbd
    wait_for 30 slurmdbd timeout 5 sacctmgr -n list cluster
  fi
  local clusters
  clusters=$(sacctmgr -n list cluster format=cluster)
  grep -qw "$CLUSTER" <<<"$clusters" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  if alive slurmctld; then
    scontrol reconfigure  # the configs were just written again
  else
    slurmctld
    wait_for 30 slurmctld timeout 5 scontrol ping
  fi
  if ! alive slurmd; then
    slurmd
  fi
  wait_for 30 "node $HOST" node_ready
}

node_ready() {
  local state
  state=$(sinfo -h -n "$HOST" -o %t)
  case "$state" in
    idle* | mix* | alloc*) return 0 ;;
    drain* | down*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 ;;
  esac
  return 1
}

start() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (it starts daemons as their own users)"
  local missing
  missing=$(missing_tools | xargs)
  [[ -z "$missing" ]] || die "missing $missing: run '$0 install' first (as root)"
  mkdir -p "$ROOT/run" "$ROOT/log"
  chmod 755 "$ROOT"
  chmod 1777 "$ROOT/run" "$ROOT/log"  # each daemon writes its pid file and log as its own user
  start_munge
  start_mariadb
  write_configs
  start_slurm
  say "up: partition $PARTITION, node $HOST, $(nproc) CPUs, $GPUS fake GPUs (SLURM_CONF=$SLURM_CONF)"
}

stop() {
  for daemon in "${DAEMONS[@]}"; do
    local pid
    pid=$(pid_of "$daemon")
    if alive "$daemon"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$ROOT/run/$daemon.pid"
  done
  say "stopped"
}

status() {
  for daemon in "${DAEMONS[@]}"; do
    if alive "$daemon"; then echo "$daemon running (pid $(pid_of "$daemon"))"; else echo "$daemon stopped"; fi
  done
  alive slurmctld && sinfo
  return 0
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "SLURM_CONF=$SLURM_CONF"; echo "PATH=$ROOT/bin:$PATH" ;;
  *) die "usage: $0 install|start|stop|status|env" ;;
esac

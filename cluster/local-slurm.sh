#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for testing the pipeline against a real scheduler:
# slurmctld, slurmd, munge, slurmdbd on a local MariaDB, and fake GPUs as GRES (character
# devices with no CUDA behind them). Needs root and Debian's packages (installed if missing).
#
#   cluster/local-slurm.sh start    # idempotent: a running cluster is left as it is
#   cluster/local-slurm.sh stop     # stops every daemon by the pid in its pid file
#   cluster/local-slurm.sh status
#
# LLMDISSECT_SLURM_DIR (default /var/tmp/llmdissect-slurm) holds pid files, logs, spool and the
# fake devices; LLMDISSECT_SLURM_GPUS (default 2) is how many fake GPUs the node has.
set -euo pipefail

ROOT=${LLMDISSECT_SLURM_DIR:-/var/tmp/llmdissect-slurm}
GPUS=${LLMDISSECT_SLURM_GPUS:-2}
CLUSTER=llmdissect
PARTITION=main
HOST=$(hostname -s)
DB_USER=slurm
DB_PASS=slurm-local-only
DAEMONS=(slurmd slurmctld slurmdbd mariadbd munged)  # stop order

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

install_packages() {
  local missing=()
  for tool in slurmctld slurmd slurmdbd munged mariadbd; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  say "installing slurm-wlm, munge, slurmdbd, mariadb-server (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge slurmdbd mariadb-server >/dev/null
}

start_munge() {
  alive munged && return
  if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- munged --pid-file="$ROOT/run/munged.pid"
  wait_for 10 munged test -s "$ROOT/run/munged.pid"
}

start_mariadb() {
  if ! alive mariadbd; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    if [[ ! -d /var/lib/mysql/mysql ]]; then
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$ROOT/log/mariadb-install.log" 2>&1
    fi
    setsid mariadbd --user=mysql --bind-address=127.0.0.1 --socket=/run/mysqld/mysqld.sock \
      --pid-file="$ROOT/run/mariadbd.pid" >"$ROOT/log/mariadbd.log" 2>&1 </dev/null &
    wait_for 30 MariaDB mariadb -e "select 1"
  fi
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO '$DB_USER'@'localhost';"
}

write_configs() {
  local memory
  memory=$(($(free -m | awk '/^Mem:/ {print $2}') - 1024))
  mkdir -p /etc/slurm "$ROOT/spool/ctld" "$ROOT/spool/d" "$ROOT/dev"
  chown -R slurm:slurm "$ROOT/spool"
  for i in $(seq 0 $((GPUS - 1))); do
    [[ -c "$ROOT/dev/gpu$i" ]] || mknod -m 666 "$ROOT/dev/gpu$i" c 1 3
  done
  cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdAddr=127.0.0.1
DbdHost=$HOST
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=$DB_USER
StoragePass=$DB_PASS
LogFile=$ROOT/log/slurmdbd.log
PidFile=$ROOT/run/slurmdbd.pid
EOF
  chown slurm:slurm /etc/slurm/slurmdbd.conf && chmod 600 /etc/slurm/slurmdbd.conf
  cat >/etc/slurm/slurm.conf <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$HOST
AuthType=auth/munge
SlurmUser=slurm
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$HOST
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
  } >/etc/slurm/gres.conf
}

start_slurm() {
  if ! alive slurmdbd; then
    slurmdbd
    wait_for 30 slurmdbd sacctmgr -n list cluster
  fi
  local clusters
  clusters=$(sacctmgr -n list cluster format=cluster)
  grep -qw "$CLUSTER" <<<"$clusters" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  if alive slurmctld; then
    scontrol reconfigure  # the configs were just written again
  else
    slurmctld
    wait_for 30 slurmctld scontrol ping
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
  [[ $(id -u) -eq 0 ]] || die "must run as root (it starts system daemons)"
  install_packages
  mkdir -p "$ROOT/run" "$ROOT/log"
  chmod 1777 "$ROOT/run"  # each daemon writes its pid file as its own user
  start_munge
  start_mariadb
  write_configs
  start_slurm
  say "up: partition $PARTITION, node $HOST, $(nproc) CPUs, $GPUS fake GPUs (logs: $ROOT/log)"
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
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 start|stop|status" ;;
esac

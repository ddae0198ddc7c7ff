#!/usr/bin/env bash
# A one-node Slurm on this machine, for tests and CI: Debian's slurm-wlm and
# munge, controller (slurmctld) and node daemon (slurmd) on localhost, started
# directly (no systemd). Needs root.
#
#   scripts/slurm_local.sh install   # apt-get install slurm-wlm munge (once)
#   scripts/slurm_local.sh start     # munged, slurmctld, slurmd; waits idle
#   scripts/slurm_local.sh status    # sinfo and squeue
#   scripts/slurm_local.sh stop      # ends the daemons this script started
#
# Every command is idempotent: start with the daemons up only checks them.
# The node offers all CPUs and 80% of the memory, one partition `debug`, no
# accounting (sacct has no data; read squeue / scontrol show job instead).
# It writes /etc/slurm/slurm.conf only if that file is absent or its own, so
# it never replaces a real cluster's configuration.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK='# written by zhang2017 scripts/slurm_local.sh'
STATE=/var/lib/zhang2017-slurm

die() { echo "slurm_local: $*" >&2; exit 1; }

need_root() {
  [[ $(id -u) == 0 ]] || die "needs root (it starts munged, slurmctld, slurmd)"
}

install() {
  need_root
  if command -v slurmctld >/dev/null && command -v munged >/dev/null; then
    return
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge \
    >/dev/null
}

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  if [[ ! -f /etc/munge/munge.key ]]; then
    mungekey -c -k /etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    su -s /bin/sh munge -c munged 9>&-  # Daemons must not keep the lock.
    for _ in $(seq 50); do
      munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
      sleep 0.1
    done
    die "munged did not answer; see /var/log/munge/munged.log"
  fi
}

write_conf() {
  if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and is not ours; refusing to replace it"
  fi
  local host cpus mem
  host=$(hostname)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
  mkdir -p /etc/slurm "$STATE"/ctld "$STATE"/d /var/log/slurm
  cat >"$CONF.tmp" <<EOF
$MARK
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
# A requeued job may start again cred_expire seconds later (default 120) and
# starts at the next scheduling pass (default up to 60 s): here 6-8 s.
AuthInfo=cred_expire=5
SchedulerParameters=sched_interval=2,bf_interval=2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
KillWait=5
MinJobAge=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
}

start() {
  need_root
  command -v slurmctld >/dev/null || \
    die "slurm-wlm is not installed; run: $0 install"
  # Two callers at once (tests in parallel) start one set of daemons.
  mkdir -p /run/lock
  exec 9>/run/lock/zhang2017-slurm.lock
  flock 9
  start_munge
  write_conf
  # 9>&-: a daemon that inherited the lock's descriptor would hold the lock
  # for its lifetime, and every later `start` would wait forever.
  running "$STATE/slurmctld.pid" || slurmctld 9>&-
  running "$STATE/slurmd.pid" || slurmd 9>&-
  for _ in $(seq 100); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
      sinfo
      return
    fi
    sleep 0.2
  done
  sinfo >&2 || true
  die "the node is not idle after 20 s; see /var/log/slurm/"
}

stop() {
  local f
  for f in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    if running "$f"; then
      kill "$(cat "$f")"
    fi
  done
}

status() {
  sinfo
  squeue
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 [install|start|status|stop]" ;;
esac

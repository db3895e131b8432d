#!/usr/bin/env bash
# A one-node Slurm on this machine for as long as a command runs:
#   scripts/slurm-local.sh COMMAND [ARGS...]
# Installs Debian's slurm-wlm and munge if missing (needs root and apt), writes a minimal
# slurm.conf for this machine under a temporary directory (no systemd, no cgroups:
# proctrack/linuxproc and task/none; no accounting), starts munged, slurmctld and slurmd in
# the foreground in the background, waits until the node is idle, runs COMMAND with
# SLURM_CONF set, and stops the daemons when it exits, however it exits. The exit status
# is COMMAND's.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "slurm-local: installing slurm-wlm and munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

dir=$(mktemp -d /tmp/slurm-local.XXXXXX)
pids=()
stop() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap stop EXIT

host=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 755 "$dir"

cat >"$dir/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"

# munge: a fresh key and its own socket, so that nothing of the system's is touched.
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1 count=1024 status=none
chmod 400 "$dir/munge/munge.key"
munged --foreground --force --key-file="$dir/munge/munge.key" \
    --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munge.seed" \
    >>"$dir/munged.out" 2>&1 &
pids+=($!)
# Slurm's munge plugin finds the socket through its auth options.
echo "AuthInfo=socket=$dir/munge/munge.socket" >>"$SLURM_CONF"
sleep 1

slurmctld -D -i -f "$SLURM_CONF" >>"$dir/slurmctld.out" 2>&1 &
pids+=($!)
sleep 1
slurmd -D -f "$SLURM_CONF" >>"$dir/slurmd.out" 2>&1 &
pids+=($!)

for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qx 'idle'; then
        break
    fi
    sleep 1
done
if ! sinfo -h -o '%T' 2>/dev/null | grep -qx 'idle'; then
    echo "slurm-local: the node did not come up; logs:" >&2
    tail -n 20 "$dir"/*.log "$dir"/*.out >&2 || true
    exit 1
fi
echo "slurm-local: node $host idle ($cpus CPUs); SLURM_CONF=$SLURM_CONF" >&2

status=0
"$@" || status=$?
exit "$status"

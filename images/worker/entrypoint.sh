#!/bin/sh
# The worker image's entrypoint (under tini). Two jobs:
# - On an MPIJob launcher, wait until every worker in the hostfile resolves: Hydra gives up at
#   once on an unknown host, and a worker's DNS record appears only once it turns Ready, which
#   for a worker whose spot GPU node is still arriving takes minutes. The wait ends after
#   VIDEOSTYLE_WORKERS_WAIT_SECONDS (the MPIJob sets it from workers_wait_seconds), and mpirun
#   then starts anyway, to fail with Hydra's own message.
# - A first argument that is no program (a step name, an option) goes to the videostyle CLI, so
#   `docker run IMAGE preprocess ...` and a pod's `args: [preprocess, ...]` read as they run,
#   while `mpirun ...` or `/usr/sbin/sshd ...` run as given.
set -eu

if [ "${K_MPI_JOB_ROLE:-}" = launcher ] && [ -r "${HYDRA_HOST_FILE:-}" ]; then
    wait_s=${VIDEOSTYLE_WORKERS_WAIT_SECONDS:-900}
    deadline=$(($(date +%s) + wait_s))
    for host in $(cut -d: -f1 "$HYDRA_HOST_FILE"); do
        until getent hosts "$host" >/dev/null; do
            if [ "$(date +%s)" -ge "$deadline" ]; then
                echo "entrypoint: $host does not resolve after ${wait_s} s; starting anyway" >&2
                break
            fi
            sleep 1
        done
    done
fi

if [ $# -eq 0 ] || ! command -v "$1" >/dev/null 2>&1; then
    set -- python -m videostyle "$@"
fi
exec "$@"

"""An MPIJob's tries against the EMULATED Kubernetes API (see conftest.py): what the tests of
the MPIJob operator and of its trigger share.

The operator and its trigger run unchanged, with the real `kubernetes` clients and the hooks
(videostyle_airflow.kubernetes.hook); the tests play the MPI Operator by writing the MPIJob's
status (`conditions`), its launcher pod (`launcher_pod`) and its workers (`worker_pod`), and
an API server in trouble (`Outage`). The task runner is reduced to the context the operator
reads (`task_context`), and the triggerer to rebuilding the trigger from its serialized form
and running it to its first event (`run_in_triggerer`).
"""

import asyncio
import base64
import contextlib
import importlib
import json
from typing import Any, cast

import aiohttp.web
import kmock
import pytest
from airflow.sdk import Context
from airflow.sdk.exceptions import TaskDeferred

from tests.videostyle_airflow.kubernetes.conftest import (
    MPIJOBS,
    NAMESPACE,
    PODS,
    EmulatedKubernetes,
)
from tests.videostyle_airflow.operator_doubles import TaskInstance
from videostyle_airflow.kubernetes.hook import (
    API_VERSION,
    KIND,
    attempt_name,
    owner_reference,
    task_run_hash,
)
from videostyle_airflow.kubernetes.mpijob_operator import MPIJobOperator, env_from_attempt_secret
from videostyle_airflow.kubernetes.mpijob_trigger import MPIJobTrigger

DAG_ID, RUN_ID, TASK_ID = "videostyle_process", "manual__2026-01-01T00:00:00+00:00", "score"
RUN_HASH = task_run_hash(dag_id=DAG_ID, run_id=RUN_ID, task_id=TASK_ID, map_index=-1)
MPIJOBS_PATH = f"/apis/kubeflow.org/v2beta1/namespaces/{NAMESPACE}/mpijobs"
SECRETS_PATH = f"/api/v1/namespaces/{NAMESPACE}/secrets"
PODS_PATH = f"/api/v1/namespaces/{NAMESPACE}/pods"
SAS = "sv=2025-01-05&se=2026-01-01T01%3A00%3A00Z&sr=c&sp=rwl&sig=dGhpcyBpcyBhIHNpZ25hdHVyZQ%3D%3D"
SECRET_ENV = {"VIDEOSTYLE_SAS_TOKEN": SAS}
SAS_B64 = base64.b64encode(SAS.encode()).decode()
# What a spec builder hands the operator: the Launcher gets the attempt's Secret as env.
SCORE_MPIJOB: dict[str, Any] = {
    "metadata": {"labels": {"kueue.x-k8s.io/queue-name": "gpu"}},
    "spec": {
        "slotsPerWorker": 1,
        "launcherCreationPolicy": "WaitForWorkersReady",
        "runPolicy": {"cleanPodPolicy": "Running"},
        "mpiReplicaSpecs": {
            "Launcher": {
                "replicas": 1,
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "launcher",
                                "image": "videostyle-worker",
                                "envFrom": [env_from_attempt_secret()],
                            }
                        ]
                    }
                },
            },
            "Worker": {
                "replicas": 2,
                "template": {
                    "spec": {"containers": [{"name": "worker", "image": "videostyle-worker"}]}
                },
            },
        },
    },
}


def task_context(try_number: int = 1) -> Context:
    """The slice of the task runner's context the operator reads."""
    ti = TaskInstance(
        dag_id=DAG_ID,
        run_id=RUN_ID,
        task_id=TASK_ID,
        map_index=-1,
        try_number=try_number,
    )
    return cast(Context, {"ti": ti})


def name_of_try(try_number: int) -> str:
    return attempt_name(task_id=TASK_ID, run_hash=RUN_HASH, try_number=try_number)


def score_operator(**kwargs: Any) -> MPIJobOperator:
    options: dict[str, Any] = {"mpijob": SCORE_MPIJOB, "secret_env": SECRET_ENV} | kwargs
    return MPIJobOperator(task_id=TASK_ID, poll_interval=0.01, **options)


def defer(operator: MPIJobOperator, context: Context) -> MPIJobTrigger:
    """Run `execute` up to its deferral; return the trigger it defers to."""
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    assert deferred.value.method_name == "execute_complete"
    return cast(MPIJobTrigger, deferred.value.trigger)


def rebuild(trigger: MPIJobTrigger) -> MPIJobTrigger:
    """The trigger as the triggerer builds it: from its class path and JSON-stored kwargs."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    trigger_class = getattr(importlib.import_module(module), name)
    return cast(MPIJobTrigger, trigger_class(**json.loads(json.dumps(kwargs))))


def run_in_triggerer(trigger: MPIJobTrigger) -> dict[str, Any]:
    """Run the rebuilt trigger to its first event; return the event's payload, JSON-stored."""

    async def first_event() -> Any:
        return (await anext(aiter(rebuild(trigger).run()))).payload

    return cast(dict[str, Any], json.loads(json.dumps(asyncio.run(first_event()))))


def conditions(*reasons: str, failed: str | None = None) -> dict[str, Any]:
    """An MPIJob status with True conditions of these reasons (type: the reason's word)."""
    types = {
        "MPIJobCreated": "Created",
        "MPIJobRunning": "Running",
        "MPIJobSuspended": "Suspended",
        "MPIJobSucceeded": "Succeeded",
    }
    listed = [{"type": types[r], "status": "True", "reason": r, "message": r} for r in reasons]
    if failed:
        listed.append({"type": "Failed", "status": "True", "reason": failed, "message": failed})
    return {"conditions": listed}


def calls(kube: EmulatedKubernetes, start: int = 0) -> list[tuple[str, str, dict[str, str]]]:
    """The requests the emulator received: method, path and query."""
    return [(r.method.value, r.url.path, dict(r.params)) for r in kube.requests()[start:]]


def mpijob_calls(kube: EmulatedKubernetes) -> list[tuple[str, str, dict[str, str]]]:
    """The requests about MPIJobs and Secrets: not the pod reads that follow the launcher's log,
    which run beside the polls."""
    return [call for call in calls(kube) if not call[1].startswith(PODS_PATH)]


def deletion(name: str) -> tuple[str, str, dict[str, str]]:
    return ("DELETE", f"{MPIJOBS_PATH}/{name}", {"propagationPolicy": "Foreground"})


def launcher_pod(kube: EmulatedKubernetes, mpijob: str, **status: Any) -> str:
    """Play the MPI Operator: the launcher pod of `mpijob`, with this status; its name."""
    name = f"{mpijob}-launcher-x7k2p"
    kube.put(
        PODS,
        {
            "metadata": {
                "name": name,
                "labels": {
                    "training.kubeflow.org/job-name": mpijob,
                    "training.kubeflow.org/job-role": "launcher",
                },
                # Really owned by the launcher Job, which the MPIJob owns.
                "ownerReferences": [_owned_by(kube, mpijob)],
            },
            "spec": {"containers": [{"name": "launcher", "image": "videostyle-worker"}]},
            "status": status,
        },
    )
    return name


# What the scheduler says of a GPU pod no node can take (the pod's condition and its event).
INSUFFICIENT_GPU = (
    "0/3 nodes are available: 1 node(s) had untolerated taint {CriticalAddonsOnly: true}, "
    "2 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: "
    "3 No preemption victims found for incoming pod."
)


def worker_name(mpijob: str, index: int) -> str:
    """A worker pod's name, as the MPI Operator gives it."""
    return f"{mpijob}-worker-{index}"


def worker_pod(
    kube: EmulatedKubernetes, mpijob: str, index: int, *, ready: bool = True
) -> dict[str, Any]:
    """A worker pod of `mpijob` as the MPI Operator creates it: Running and Ready (sshd
    listens), or, not `ready`, Pending and unscheduled (its node gone, no other free)."""
    status: dict[str, Any] = (
        {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        if ready
        else {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": INSUFFICIENT_GPU,
                }
            ],
        }
    )
    return {
        "metadata": {
            "name": worker_name(mpijob, index),
            "labels": {
                "training.kubeflow.org/job-name": mpijob,
                "training.kubeflow.org/job-role": "worker",
                "training.kubeflow.org/replica-index": str(index),
            },
            "ownerReferences": [_owned_by(kube, mpijob)],
        },
        "spec": {"containers": [{"name": "worker", "image": "videostyle-worker"}]},
        "status": status,
    }


def put_workers(kube: EmulatedKubernetes, mpijob: str) -> list[str]:
    """Play the MPI Operator: every worker of `mpijob` (SCORE_MPIJOB's two) running; names."""
    count = SCORE_MPIJOB["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"]
    for index in range(count):
        kube.put(PODS, worker_pod(kube, mpijob, index))
    return [worker_name(mpijob, index) for index in range(count)]


def is_read_of(request: kmock.Request, mpijob: str) -> bool:
    """Whether `request` reads MPIJob `mpijob` (a poll)."""
    return (
        request.action == kmock.action.FETCH
        and request.resource == MPIJOBS
        and request.name == mpijob
    )


# The longest an Outage leaves a request unanswered.
HANG_S = 5.0


class Outage:
    """
    Play an API server in trouble (an interrupt, see conftest.py): after `after` reads of
    MPIJob `mpijob`, every request fails until `reads` more reads of it have failed; the read
    after those is served, and the outage is `over`.

    A request fails by being answered `status`, or, with None, by no answer (it hangs until the
    outage is over, the client having given up by then; or for HANG_S at most, then served).
    """

    def __init__(self, mpijob: str, *, after: int, reads: int, status: int | None) -> None:
        self.mpijob = mpijob
        self.after = after
        self.reads = reads
        self.status = status
        self.seen = 0  # reads of the MPIJob before the outage
        self.failed = 0  # reads of the MPIJob failed
        self.requests_failed = 0  # requests of any kind failed
        self.over = False
        self._ended: asyncio.Event | None = None  # made on the server's loop

    async def __call__(self, request: kmock.Request) -> aiohttp.web.StreamResponse | None:
        if self._ended is None:
            self._ended = asyncio.Event()
        read = is_read_of(request, self.mpijob)
        if self.over:
            return None
        if self.seen < self.after:
            self.seen += read
            return None
        if read and self.failed == self.reads:
            self.over = True
            self._ended.set()
            return None
        self.failed += read
        self.requests_failed += 1
        if self.status is None:
            # Bounded, so that a client that waits for ever fails the test instead of hanging it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), HANG_S)
            return None
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": self.status}
        return aiohttp.web.json_response(body, status=self.status)


def stamped(lines: list[str]) -> list[str]:
    """Lines as the API serves a log with timestamps=true (kubelet format, a ms apart)."""
    return [f"2026-01-01T10:00:00.{i:03d}000000Z {line}" for i, line in enumerate(lines)]


def _owned_by(kube: EmulatedKubernetes, mpijob: str) -> dict[str, str]:
    """The owner reference the MPI Operator puts on an MPIJob's pods (and their Job)."""
    uid = kube.objects(MPIJOBS)[mpijob]["metadata"]["uid"]
    return owner_reference(api_version=API_VERSION, kind=KIND, name=mpijob, uid=uid)

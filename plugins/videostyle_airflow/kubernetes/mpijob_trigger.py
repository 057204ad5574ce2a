"""Wait for an MPIJob to end: in the triggerer, or inline for a non-deferrable operator."""

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from kubernetes_asyncio.client.exceptions import ApiException

from videostyle.errors import failure_reason
from videostyle.progress import JobProgress
from videostyle_airflow.kubernetes.hook import VideostyleAsyncKubernetesHook
from videostyle_airflow.kubernetes.mpijob_outcome import (
    Outcome,
    launcher_exit_code,
    mpijob_state,
)

# The launcher's log is copied into the task log at least this often (the ranks write progress
# every few seconds), and each read asks for this much more than the time since the last one:
# the API counts from its own clock, and lines already copied are dropped by their timestamps.
LOG_INTERVAL_S = 5.0
LOG_OVERLAP_S = 10


class LauncherLog:
    """What has been read of a launcher pod's log (timestamped lines), and what it said."""

    def __init__(self) -> None:
        self.failure: str | None = None
        self.problem: str | None = None  # the last read's failure, warned about once
        self._progress = JobProgress()
        self._pod: str | None = None
        self._read_at = 0.0
        self._last: tuple[str, str] | None = None  # the newest line's timestamp
        self._at_last = 0  # lines copied with that very timestamp

    def since_seconds(self, pod: str) -> int | None:
        """How far back to read `pod`'s log: all of it for a pod not read yet."""
        if pod != self._pod:
            return None
        return math.ceil(time.monotonic() - self._read_at) + LOG_OVERLAP_S

    def new_lines(self, pod: str, stamped: list[str]) -> list[str]:
        """The lines of `stamped` (`<RFC 3339 time> <text>`) not returned before, as text."""
        if pod != self._pod:
            self._pod, self._last, self._at_last = pod, None, 0
        self._read_at = time.monotonic()
        new = []
        seen_at_last = 0
        for line in stamped:
            stamp, _, text = line.partition(" ")
            key = _stamp_key(stamp)
            if self._last is not None and key < self._last:
                continue
            if key == self._last:
                seen_at_last += 1
                if seen_at_last <= self._at_last:
                    continue
                self._at_last += 1
            else:
                self._last, self._at_last, seen_at_last = key, 1, 1
            new.append(text)
        return new

    def note(self, line: str) -> str | None:
        """Take in a line's failure reason and progress; the job's progress line when due."""
        if (reason := failure_reason(line)) is not None:
            self.failure = reason
        return self._progress.feed(line)


class MPIJobTrigger(BaseTrigger):
    """
    Poll an MPIJob until its outcome is decided (`mpijob_state`), then fire one event.

    Meanwhile the launcher pod's log is copied into the task log as it grows, with the job's
    progress summed from the ranks' progress lines; a failure to read it is only a warning.

    The event's payload holds `name`, `namespace`, `failure` (the reason in the launcher log's
    last `<step> failed: <reason>` line, else None), and either `status` (the MPIJob's
    `.status`) with `launcher_exit_code` (read off the launcher pod once the MPIJob failed;
    None when unknown), or `error` (the deadline passed, the MPIJob vanished, the API failed):
    every way the wait ends reaches the operator, which deletes the MPIJob.

    :param name: the MPIJob's name.
    :param namespace: its namespace.
    :param kubernetes_conn_id: the Kubernetes connection.
    :param poll_interval: seconds between polls.
    :param deadline: UNIX time at which waiting gives up, None for never; absolute, so that
        a restarted triggerer does not wait longer.
    """

    def __init__(
        self,
        *,
        name: str,
        namespace: str,
        kubernetes_conn_id: str,
        poll_interval: float,
        deadline: float | None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "name": self.name,
                "namespace": self.namespace,
                "kubernetes_conn_id": self.kubernetes_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    def _hook(self) -> VideostyleAsyncKubernetesHook:
        return VideostyleAsyncKubernetesHook(conn_id=self.kubernetes_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        launcher_log = LauncherLog()
        follower = asyncio.create_task(self._follow_launcher_log(hook, launcher_log))
        try:
            outcome = await self._outcome(hook)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        await self._copy_launcher_log(hook, launcher_log)  # its last lines: why it failed
        yield self._event(**outcome, failure=launcher_log.failure)

    async def _outcome(self, hook: VideostyleAsyncKubernetesHook) -> dict[str, Any]:
        """Poll until the outcome is decided: the event's fields."""
        reported: tuple[Outcome, str] | None = None
        try:
            while True:
                status = (await hook.get_mpijob(self.name, self.namespace)).get("status")
                state = mpijob_state(status)
                exit_code = None
                if state.outcome is Outcome.RETRY:  # failed: the launcher may say "bad input"
                    pods = await hook.launcher_pods(self.name, self.namespace)
                    exit_code = launcher_exit_code(pods)
                    state = mpijob_state(status, launcher_exit_code=exit_code)
                if (state.outcome, state.reason) != reported:
                    reported = (state.outcome, state.reason)
                    self.log.info(
                        "MPIJob %s/%s: %s (%s) %s",
                        self.namespace,
                        self.name,
                        state.reason,
                        state.outcome.value,
                        state.message,
                    )
                if state.outcome is not Outcome.RUNNING:
                    return {"status": status, "launcher_exit_code": exit_code}
                wait = self.poll_interval
                if self.deadline is not None:
                    if time.time() >= self.deadline:
                        return {"error": f"still {state.reason} at the deadline"}
                    wait = min(wait, self.deadline - time.time())
                await asyncio.sleep(max(wait, 0))
        except ApiException as exc:
            return {"error": f"the Kubernetes API answered {exc.status} {exc.reason}"}
        except Exception as exc:  # the operator must hear of every failure to clean up
            return {"error": f"waiting failed: {exc!r}"}

    async def _follow_launcher_log(
        self, hook: VideostyleAsyncKubernetesHook, log: LauncherLog
    ) -> None:
        while True:
            await self._copy_launcher_log(hook, log)
            await asyncio.sleep(min(self.poll_interval, LOG_INTERVAL_S))

    async def _copy_launcher_log(
        self, hook: VideostyleAsyncKubernetesHook, log: LauncherLog
    ) -> None:
        """Copy the launcher log's new lines into the task log, with the job's progress."""
        try:
            for line in await self._read_launcher_log(hook, log):
                self.log.info("%s", line)
                if (job := log.note(line)) is not None:
                    self.log.info("%s", job)
        except Exception as exc:  # the log is for people: the job goes on without it
            problem = (
                f"the Kubernetes API answered {exc.status} {exc.reason}"
                if isinstance(exc, ApiException)
                else repr(exc)
            )
            if problem != log.problem:  # once, not at every read
                self.log.warning(
                    "Cannot read the launcher's log of MPIJob %s: %s", self.name, problem
                )
            log.problem = problem
            return
        log.problem = None

    async def _read_launcher_log(
        self, hook: VideostyleAsyncKubernetesHook, log: LauncherLog
    ) -> list[str]:
        """The lines the launcher logged since the last read; none before it runs."""
        pods = await hook.launcher_pods(self.name, self.namespace)
        started = [p for p in pods if p.get("status", {}).get("phase") not in (None, "Pending")]
        if not started:
            return []
        pod = max(started, key=lambda p: str(p["metadata"].get("creationTimestamp", "")))
        name = pod["metadata"]["name"]
        stamped = await hook.read_pod_log(
            name,
            self.namespace,
            container=pod["spec"]["containers"][0]["name"],  # where mpirun runs
            since_seconds=log.since_seconds(name),
        )
        return log.new_lines(name, stamped)

    async def on_kill(self) -> None:
        """A user killed the deferred task: delete the MPIJob (its pods and Secret go with it)."""
        self.log.info("MPIJob %s/%s: the task was killed", self.namespace, self.name)
        await self._hook().delete_mpijob(self.name, self.namespace)

    def _event(self, **fields: Any) -> TriggerEvent:
        payload = {"name": self.name, "namespace": self.namespace, **fields}
        return TriggerEvent(payload)  # type: ignore[no-untyped-call]


def _stamp_key(stamp: str) -> tuple[str, str]:
    """A log timestamp, comparable: its fraction padded (the kubelet pads it, not every API)."""
    whole, _, fraction = stamp.removesuffix("Z").partition(".")
    return whole, fraction.ljust(9, "0")

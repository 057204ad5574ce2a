"""Wait for an MPIJob to end: in the triggerer, or inline for a non-deferrable operator."""

import asyncio
import contextlib
import enum
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent
from kubernetes_asyncio.client.exceptions import ApiException

from videostyle.errors import failure_reason
from videostyle.progress import JobProgress
from videostyle_airflow.kubernetes.hook import VideostyleAsyncKubernetesHook
from videostyle_airflow.kubernetes.mpijob_outcome import (
    MPIJobState,
    Outcome,
    Problem,
    event_problems,
    has_started,
    launcher_exit_code,
    lost_workers,
    mpijob_state,
    pod_problems,
    startup_began,
    worker_names,
)

T = TypeVar("T")


# The launcher's log is copied into the task log at least this often (the ranks write progress
# every few seconds), and each read asks for this much more than the time since the last one:
# the API counts from its own clock, and lines already copied are dropped by their timestamps.
LOG_INTERVAL_S = 5.0
LOG_OVERLAP_S = 10
# The launcher's last lines a failed try repeats: what it was doing when it failed.
TAIL_LINES = 20
# The longest one API call may take, the client's own retries included: a hung API server must
# not hold the wait past its deadline, nor a killed task past the time it is given.
REQUEST_TIMEOUT_S = 60.0
# A killed task's last copy of the launcher's log: the triggerer gives on_kill 30 s in all
# ([triggerer] on_kill_timeout), and the delete comes after it.
KILL_LOG_TIMEOUT_S = 10.0
# The Job the MPI Operator runs the launcher in: a quota refusing its pod is among its events.
LAUNCHER_JOB = "{name}-launcher"
# At most this many reasons a start-up timeout names (a job of many workers has many pods).
MAX_PROBLEMS = 10
# What an API error answered to the wait's reads means. 404 and 410: the MPIJob is gone
# (deleted by hand, by its TTL, by a sweeper); nothing is left to wait for. 401, 403, 408 and
# 429 are transient like any 5xx: credentials expire and are renewed (exec plugins, workload
# identity), RBAC is reconciled after the fact, a busy API server sheds load; one that persists
# ends the wait at its deadline like any outage. Any other 4xx (400, 405, 406, 415, 422 ...)
# says the request itself is wrong, and asking again gets the same answer: it ends the wait.
GONE_STATUSES = frozenset({404, 410})
TRANSIENT_4XX = frozenset({401, 403, 408, 429})


class Log(Protocol):
    """What the helpers below log through: the trigger's logger."""

    def info(self, msg: str, /, *args: Any) -> Any: ...
    def warning(self, msg: str, /, *args: Any) -> Any: ...


class ApiVerdict(enum.Enum):
    TRANSIENT = "transient"  # log it and keep waiting
    GONE = "gone"  # the MPIJob was deleted
    REFUSED = "refused"  # the request can never be served


def api_verdict(exc: Exception) -> ApiVerdict:
    """What a failed API call means for the wait (see GONE_STATUSES)."""
    if not isinstance(exc, ApiException):
        # Timeouts, connections refused or reset, the connection's secrets backend failing:
        # no answer at all says nothing about the MPIJob.
        return ApiVerdict.TRANSIENT
    if exc.status in GONE_STATUSES:
        return ApiVerdict.GONE
    if 400 <= (exc.status or 0) < 500 and exc.status not in TRANSIENT_4XX:
        return ApiVerdict.REFUSED
    return ApiVerdict.TRANSIENT


def api_problem(exc: Exception) -> str:
    """A failed API call, in words."""
    if isinstance(exc, ApiException):
        return f"the Kubernetes API answered {exc.status} {exc.reason}"
    if isinstance(exc, TimeoutError):
        return f"no answer within {REQUEST_TIMEOUT_S:g} s"
    return repr(exc)


class ApiTrouble:
    """The failed reads of one wait, by what they read: each distinct problem is logged once
    per outage, with how long that read has been failing, and its recovery once."""

    def __init__(self, log: Log) -> None:
        self._log = log
        self._since: dict[str, float] = {}  # monotonic time of the outage's first failure
        self._said: dict[str, set[str]] = {}

    def failed(self, what: str, problem: str) -> None:
        since = self._since.setdefault(what, time.monotonic())
        said = self._said.setdefault(what, set())
        if problem not in said:
            said.add(problem)
            self._log.warning(
                "Cannot read %s (failing for %.0f s; waiting on): %s",
                what,
                time.monotonic() - since,
                problem,
            )

    def answered(self, what: str) -> None:
        if (since := self._since.pop(what, None)) is not None:
            self._said.pop(what, None)
            self._log.info(
                "Read %s again, after %.0f s of failures", what, time.monotonic() - since
            )

    def lasting(self, what: str) -> str | None:
        """How long reads of `what` have failed, in words; None when they do not."""
        if (since := self._since.get(what)) is None:
            return None
        return f"reads of {what} have failed for {time.monotonic() - since:.0f} s"


class LostWorkers:
    """Since when each worker has been seen missing or not Ready, on this process's monotonic
    clock: a restarted triggerer starts afresh, so that a lost worker may be given longer,
    never less, than its limit."""

    def __init__(self, *, mpijob: str, limit: float, log: Log) -> None:
        self._mpijob = mpijob
        self._limit = limit
        self._log = log
        self._since: dict[str, float] = {}

    def seen(self, lost: Mapping[str, str]) -> str | None:
        """Take in the workers lost now (name: how); why the try must end, once one has been
        lost longer than the limit."""
        now = time.monotonic()
        for name in sorted(set(self._since) - set(lost)):
            self._log.info(
                "MPIJob %s: worker %s is back after %.0f s",
                self._mpijob,
                name,
                now - self._since[name],
            )
            del self._since[name]
        for name, how in lost.items():
            if name not in self._since:
                self._since[name] = now
                self._log.warning(
                    "MPIJob %s: worker %s is %s; the try ends for a retry unless it is back "
                    "within %g s",
                    self._mpijob,
                    name,
                    how,
                    self._limit,
                )
        overdue = [name for name, since in self._since.items() if now - since >= self._limit]
        if not overdue:
            return None
        name = min(overdue, key=self._since.__getitem__)
        return (
            f"lost worker {name}: {lost[name]} for {now - self._since[name]:.0f} s, longer "
            f"than worker_lost_seconds ({self._limit:g} s); its node was taken away "
            "(a spot eviction, say) or failed"
        )


class LauncherLog:
    """What has been read of a launcher pod's log (timestamped lines), and what it said."""

    def __init__(self, *, first_read_lines: int | None = None) -> None:
        self.failure: str | None = None
        self.problem: str | None = None  # the last read's failure, warned about once
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        # None: a pod's first read copies all of its log; a number: only its last lines.
        self.first_read_lines = first_read_lines
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

    def tail_lines(self, pod: str) -> int | None:
        """How many of `pod`'s last lines to read: all for a pod read before."""
        return self.first_read_lines if pod != self._pod else None

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
        self.tail.append(line)
        if (reason := failure_reason(line)) is not None:
            self.failure = reason
        return self._progress.feed(line)


class MPIJobTrigger(BaseTrigger):
    """
    Poll an MPIJob until its outcome is decided (`mpijob_state`), then fire one event.

    Meanwhile the launcher pod's log is copied into the task log as it grows, with the job's
    progress summed from the ranks' progress lines; a failure to read it is only a warning.
    A read of the MPIJob that fails for a transient reason (`api_verdict`: 5xx, 429, no answer,
    credentials) is logged and the wait goes on: only an outcome, the MPIJob gone (404), a
    request the API can never serve, or the deadline ends it.

    Two more things end it for a retry: an MPIJob not running `startup_timeout_seconds` after
    its creation or its admission (the pods' events say why), and, once it runs, a worker
    missing or not Ready for `worker_lost_seconds` (its spot node taken away, say).

    The event's payload holds `name`, `namespace`, `failure` (the reason in the launcher log's
    last `<step> failed: <reason>` line, else None), `tail` (the launcher log's last lines),
    and either `status` (the MPIJob's `.status`) with `launcher_exit_code` (read off the
    launcher pod once the MPIJob failed; None when unknown), or `retry` (why the try ends for a
    retry: start-up timeout, lost worker), or `error` (the deadline passed, the MPIJob
    vanished, the API refused): every way the wait ends reaches the operator, which deletes the
    MPIJob.

    :param name: the MPIJob's name.
    :param namespace: its namespace.
    :param kubernetes_conn_id: the Kubernetes connection.
    :param poll_interval: seconds between polls.
    :param deadline: UNIX time at which waiting gives up, None for never; absolute, so that
        a restarted triggerer does not wait longer.
    :param created_at: UNIX time the MPIJob was created; None (a trigger of an older operator)
        times no start-up.
    :param startup_timeout_seconds: how long it may take to run; None for as long as it takes.
    :param worker_lost_seconds: how long a worker may be missing or not Ready while it runs;
        None for as long as the MPI Operator lets it.
    """

    def __init__(
        self,
        *,
        name: str,
        namespace: str,
        kubernetes_conn_id: str,
        poll_interval: float,
        deadline: float | None,
        created_at: float | None = None,
        startup_timeout_seconds: float | None = None,
        worker_lost_seconds: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.created_at = created_at
        self.startup_timeout_seconds = startup_timeout_seconds
        self.worker_lost_seconds = worker_lost_seconds
        self._launcher_log: LauncherLog | None = None  # what run() read, for on_kill
        self._trouble = ApiTrouble(self.log)
        self._reported: tuple[Outcome, str] | None = None  # the last state logged

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "name": self.name,
                "namespace": self.namespace,
                "kubernetes_conn_id": self.kubernetes_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "created_at": self.created_at,
                "startup_timeout_seconds": self.startup_timeout_seconds,
                "worker_lost_seconds": self.worker_lost_seconds,
            },
        )

    def _hook(self) -> VideostyleAsyncKubernetesHook:
        return VideostyleAsyncKubernetesHook(conn_id=self.kubernetes_conn_id)

    @property
    def _subject(self) -> str:
        return f"MPIJob {self.namespace}/{self.name}"

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        self._launcher_log = launcher_log = LauncherLog()
        follower = asyncio.create_task(self._follow_launcher_log(hook, launcher_log))
        try:
            outcome = await self._outcome(hook)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        # Its last lines, however the wait ended: what it did last, why it failed.
        await self._copy_launcher_log(hook, launcher_log)
        yield self._event(**outcome, failure=launcher_log.failure, tail=list(launcher_log.tail))

    async def _outcome(self, hook: VideostyleAsyncKubernetesHook) -> dict[str, Any]:
        """Poll until the outcome is decided: the event's fields."""
        lost = (
            LostWorkers(mpijob=self.name, limit=self.worker_lost_seconds, log=self.log)
            if self.worker_lost_seconds is not None
            else None
        )
        try:
            while True:
                if (decided := await self._poll(hook, lost)) is not None:
                    return decided
                wait = self.poll_interval
                if self.deadline is not None:
                    if time.time() >= self.deadline:
                        return {"error": self._at_deadline()}
                    wait = min(wait, self.deadline - time.time())
                await asyncio.sleep(max(wait, 0))
        except ApiException as exc:  # one that waiting longer cannot mend (api_verdict)
            if api_verdict(exc) is ApiVerdict.GONE:
                return {"error": f"the MPIJob is gone: {api_problem(exc)}"}
            return {"error": f"cannot be waited on: {api_problem(exc)}"}
        except Exception as exc:  # the operator must hear of every failure to clean up
            return {"error": f"waiting failed: {exc!r}"}

    async def _poll(
        self, hook: VideostyleAsyncKubernetesHook, lost: LostWorkers | None
    ) -> dict[str, Any] | None:
        """One look at the MPIJob: the event's fields once the wait is over, else None."""
        mpijob = await self._read(self._subject, hook.get_mpijob(self.name, self.namespace))
        if mpijob is None:
            return None
        status = mpijob.get("status")
        state = mpijob_state(status)
        exit_code = None
        if state.outcome is Outcome.RETRY:  # failed: the launcher may say "bad input"
            pods = await self._read(
                f"the launcher pods of {self._subject}",
                hook.launcher_pods(self.name, self.namespace),
            )
            if pods is None:  # its exit code decides between a retry and a failure
                return None
            exit_code = launcher_exit_code(pods)
            state = mpijob_state(status, launcher_exit_code=exit_code)
        self._report(state)
        if state.outcome is not Outcome.RUNNING:
            return {"status": status, "launcher_exit_code": exit_code}
        if has_started(status):
            return await self._watch_workers(hook, mpijob, lost)
        return await self._watch_startup(hook, status)

    def _report(self, state: MPIJobState) -> None:
        """Log the MPIJob's state when it changed."""
        if (state.outcome, state.reason) != self._reported:
            self._reported = (state.outcome, state.reason)
            self.log.info(
                "%s: %s (%s) %s", self._subject, state.reason, state.outcome.value, state.message
            )

    def _at_deadline(self) -> str:
        said = f"still {self._reported[1] if self._reported else 'unread'} at the deadline"
        if lasting := self._trouble.lasting(self._subject):
            said += f"; {lasting}"
        return said

    async def _watch_workers(
        self,
        hook: VideostyleAsyncKubernetesHook,
        mpijob: Mapping[str, Any],
        lost: LostWorkers | None,
    ) -> dict[str, Any] | None:
        """While it runs: a retry once a worker has been lost too long (LostWorkers)."""
        if lost is None:
            return None
        pods = await self._read(
            f"the worker pods of {self._subject}",
            hook.worker_pods(self.name, self.namespace),
            tolerate=True,  # watching the workers is a safety net: the job goes on without it
        )
        if pods is None:
            return None
        if (why := lost.seen(lost_workers(worker_names(mpijob), pods))) is None:
            return None
        self.log.error("%s %s", self._subject, why)
        return {"retry": why}

    async def _watch_startup(
        self, hook: VideostyleAsyncKubernetesHook, status: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """Before it runs: a retry, saying why, once it has taken too long to start."""
        if self.startup_timeout_seconds is None or self.created_at is None:
            return None
        if (began := startup_began(status, self.created_at)) is None:
            return None
        waited = time.time() - began
        if waited < self.startup_timeout_seconds:
            return None
        problems = await self._startup_problems(hook)
        for problem in problems:
            self.log.warning("%s: %s", self._subject, problem)
        since = "creation" if began == self.created_at else "admission"
        why = (
            f"not running {waited:.0f} s after its {since}, longer than "
            f"startup_timeout_seconds ({self.startup_timeout_seconds:g} s): "
        ) + ("; ".join(map(str, problems)) or "no pod or event says why")
        self.log.error("%s %s", self._subject, why)
        return {"retry": why}

    async def _startup_problems(self, hook: VideostyleAsyncKubernetesHook) -> list[Problem]:
        """Why the MPIJob's pods do not run, as their status and the events about them, its
        launcher Job's (a quota refusing its pod) and its own say."""
        pods = await self._read(
            f"the pods of {self._subject}", hook.job_pods(self.name, self.namespace), tolerate=True
        )
        unstarted = [
            pod for pod in pods or [] if (pod.get("status") or {}).get("phase") != "Running"
        ]
        problems: list[Problem] = []
        for about in (
            self.name,
            LAUNCHER_JOB.format(name=self.name),
            *(pod["metadata"]["name"] for pod in unstarted),
        ):
            events = await self._read(
                f"the events of {about}", hook.object_events(about, self.namespace), tolerate=True
            )
            problems.extend(event_problems(events or []))
        # After the events, which say the same with their own reason (FailedScheduling).
        problems.extend(problem for pod in unstarted for problem in pod_problems(pod))
        distinct: dict[tuple[str, str], Problem] = {}
        for problem in problems:
            distinct.setdefault((problem.about, problem.message), problem)
        return list(distinct.values())[-MAX_PROBLEMS:]

    async def _read(self, what: str, call: Awaitable[T], *, tolerate: bool = False) -> T | None:
        """What an API call answered; None when it failed for a transient reason (logged), or,
        if `tolerate`, for any reason.

        Raises the ApiException of a call waiting cannot mend (see `api_verdict`).
        """
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                answer = await call
        except Exception as exc:
            if api_verdict(exc) is not ApiVerdict.TRANSIENT and not tolerate:
                raise
            self._trouble.failed(what, api_problem(exc))
            return None
        self._trouble.answered(what)
        return answer

    async def _follow_launcher_log(
        self, hook: VideostyleAsyncKubernetesHook, log: LauncherLog
    ) -> None:
        while True:
            await self._copy_launcher_log(hook, log)
            await asyncio.sleep(min(self.poll_interval, LOG_INTERVAL_S))

    async def _copy_launcher_log(
        self,
        hook: VideostyleAsyncKubernetesHook,
        log: LauncherLog,
        timeout: float | None = None,
    ) -> None:
        """Copy the launcher log's new lines into the task log, with the job's progress; giving
        up after `timeout` seconds (default REQUEST_TIMEOUT_S)."""
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S if timeout is None else timeout):
                lines = await self._read_launcher_log(hook, log)
        except Exception as exc:  # the log is for people: the job goes on without it
            problem = api_problem(exc)
            if problem != log.problem:  # once, not at every read
                self.log.warning(
                    "Cannot read the launcher's log of MPIJob %s: %s", self.name, problem
                )
            log.problem = problem
            return
        log.problem = None
        for line in lines:
            self.log.info("%s", line)
            if (job := log.note(line)) is not None:
                self.log.info("%s", job)

    async def _read_launcher_log(
        self, hook: VideostyleAsyncKubernetesHook, log: LauncherLog
    ) -> list[str]:
        """The lines the launcher logged since the last read; none before it runs."""
        pod = started_launcher(await hook.launcher_pods(self.name, self.namespace))
        if pod is None:
            return []
        name = pod["metadata"]["name"]
        stamped = await hook.read_pod_log(
            name,
            self.namespace,
            container=pod["spec"]["containers"][0]["name"],  # where mpirun runs
            since_seconds=log.since_seconds(name),
            tail_lines=log.tail_lines(name),
        )
        return log.new_lines(name, stamped)

    async def on_kill(self) -> None:
        """A user killed the deferred task: copy the launcher log's last lines into the task
        log, then delete the MPIJob (its pods and Secret go with it)."""
        self.log.info("%s: the task was killed", self._subject)
        hook = self._hook()
        # What run() has not copied yet; or, in a trigger that did not run, the last lines.
        log = self._launcher_log or LauncherLog(first_read_lines=TAIL_LINES)
        await self._copy_launcher_log(hook, log, timeout=KILL_LOG_TIMEOUT_S)
        await hook.delete_mpijob(self.name, self.namespace)

    def _event(self, **fields: Any) -> TriggerEvent:
        payload = {"name": self.name, "namespace": self.namespace, **fields}
        return TriggerEvent(payload)  # type: ignore[no-untyped-call]


def started_launcher(pods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest of an MPIJob's launcher pods that has started, if any."""
    started = [p for p in pods if (p.get("status") or {}).get("phase") not in (None, "Pending")]
    if not started:
        return None
    return max(started, key=lambda p: str(p["metadata"].get("creationTimestamp", "")))


def _stamp_key(stamp: str) -> tuple[str, str]:
    """A log timestamp, comparable: its fraction padded (the kubelet pads it, not every API)."""
    whole, _, fraction = stamp.removesuffix("Z").partition(".")
    return whole, fraction.ljust(9, "0")

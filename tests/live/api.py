"""A small client of the live service's REST API v2, as a script or a person's tools use it."""

import time
from typing import Any
from urllib.parse import quote

import httpx

TERMINAL = {"success", "failed"}


class AirflowApi:
    def __init__(self, url: str, *, username: str, password: str) -> None:
        self.url = url
        token = httpx.post(
            f"{url}/auth/token", json={"username": username, "password": password}, timeout=30
        ).raise_for_status()
        self.client = httpx.Client(
            base_url=f"{url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=60,
        )

    def close(self) -> None:
        self.client.close()

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params).raise_for_status().json()

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> httpx.Response:
        """POST a run; the raw response, so a test can read a refusal."""
        return self.client.post(
            f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf}
        )

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.client.patch(f"/dags/{dag_id}", json={"is_paused": paused}).raise_for_status()

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"))

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        found = self.get(f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances")
        return {ti["task_id"]: ti for ti in found["task_instances"]}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of a task instance, the first first (state, try_number, ...)."""
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/tries"
        found = self.get(path)["task_instances"]
        return sorted(found, key=lambda ti: int(ti["try_number"]))

    def log_entries(
        self, dag_id: str, run_id: str, task_id: str, try_number: int
    ) -> list[dict[str, Any]]:
        """The task try's structured log: one dict per line (`event`, `level`, `error_detail`)."""
        path = (
            f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
            f"/logs/{try_number}"
        )
        content = self.get(path, full_content=True)["content"]
        return [e if isinstance(e, dict) else {"event": str(e)} for e in content]

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The task try's log lines as text."""
        entries = self.log_entries(dag_id, run_id, task_id, try_number)
        return "\n".join(str(e.get("event", "")) for e in entries)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        run = quote(run_id, safe="")
        path = f"/dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.get(path, deserialize=True)["value"]

    def wait_for_run(
        self, dag_id: str, run_id: str, *, timeout_s: float, states: set[str] = TERMINAL
    ) -> dict[str, Any]:
        """Poll the run until it reaches one of `states` (bounded: fails past `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in states:
                return run
            if time.monotonic() > deadline:
                tis = self.task_instances(dag_id, run_id)
                raise AssertionError(
                    f"{dag_id} {run_id} still {run['state']} after {timeout_s:.0f} s: "
                    + ", ".join(f"{t}={ti['state']}" for t, ti in tis.items())
                )
            time.sleep(1)

"""`make up` / `make down`: the whole pipeline as a live local service, no Docker.

Azurite (Blob Storage), PostgreSQL (the metadata database, from Debian) and Airflow's api-server
(UI and REST API), scheduler, dag-processor and triggerer, each its own process bound to
127.0.0.1, with what the DAGs need provisioned (videostyle_airflow.provision). Everything lives
under one folder (default `.live/`): data, Airflow's home, and every component's log in `logs/`.
`service.json` there records what was started, so `down` stops exactly that and nothing else.

The tests start the same service (`LiveService(...).up()`) on free ports in a folder of their own.
"""

import argparse
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from scripts import azurite
from scripts.azurite import free_port as free_port  # tests/live take it from here
from videostyle_airflow.config import PROCESS_DAG_ID, WATCH_DAG_ID

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AIRFLOW_COMPONENTS = {
    "api-server": ["api-server", "--workers", "1"],
    # Log servers would listen on every interface; the UI reads the task logs from disk here.
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
STOP_GRACE_S = 30
DB = "airflow"


class ServiceError(RuntimeError):
    pass


def wait_for(what: str, ready: Any, *, timeout_s: float, log: Path | None = None) -> None:
    """Poll `ready()` until it is true; a component that never gets there fails with its log."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            tail = "".join(log.read_text(errors="replace").splitlines(True)[-30:]) if log else ""
            raise ServiceError(f"{what} did not come up within {timeout_s:.0f} s\n{tail}")
        time.sleep(0.5)


def _started_at(pid: int) -> str | None:
    """The process's start time in clock ticks since boot: with the pid, it names one process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        raise ServiceError("PostgreSQL is not installed: run `make system` (apt-get postgresql)")
    return found[-1].parent


@dataclass
class LiveService:
    """The service's folder and ports; `up()` starts it, `down()` stops what `up()` started."""

    home: Path = ROOT / ".live"
    api_port: int = 8080
    blob_port: int = 10000
    db_port: int = 5433
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def state_file(self) -> Path:
        return self.home / "service.json"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def blob_connection_string(self) -> str:
        return azurite.azurite_connection_string(self.blob_port)

    # --- starting -------------------------------------------------------------------------

    def up(self) -> dict[str, Any]:
        if self.state_file.exists():
            raise ServiceError(f"already up ({self.state_file}); `make down` stops it")
        for folder in (self.logs, self.airflow_home, self.home / "azurite"):
            folder.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {"url": self.url, "home": str(self.home), "pids": {}}
        try:
            state["pids"]["azurite"] = self._start_azurite()
            state["postgres"] = self._start_postgres()
            self._create_database()
            env = self.airflow_env()
            self._run("migrate", [str(BIN / "airflow"), "db", "migrate"], env)
            self._run(
                "provision",
                [str(BIN / "python"), "-m", "videostyle_airflow.provision",
                 "--blob-connection-string-env", "VIDEOSTYLE_LIVE_BLOB"],
                env | {"VIDEOSTYLE_LIVE_BLOB": self.blob_connection_string},
            )  # fmt: skip
            for name, args in AIRFLOW_COMPONENTS.items():
                state["pids"][name] = self._spawn(name, [str(BIN / "airflow"), *args], env)
            self._write_state(state)
            wait_for(
                "the API server",
                lambda: self._healthy(),
                timeout_s=180,
                log=self.logs / "api-server.log",
            )
            state["login"] = self.login()
            wait_for(
                "the DAGs",
                lambda: self._dags_parsed(state["login"]),
                timeout_s=180,
                log=self.logs / "dag-processor.log",
            )
        except BaseException:
            self._write_state(state)
            self.down()
            raise
        self._write_state(state)
        return state

    def airflow_env(self) -> dict[str, str]:
        keys = self._keys()
        password = self._db_password()
        path = os.pathsep.join([str(BIN), os.environ.get("PATH", "")])
        # Nothing of the caller's Airflow or storage set-up leaks in: the service is its own.
        ambient = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "VIDEOSTYLE_", "AZURE_STORAGE_"))
        }
        return {
            **ambient,
            "PATH": path,
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # LocalExecutor forks this many workers up front: 32 by default, far more than the
            # few tasks that fit on one machine beside scoring.
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                f"postgresql+psycopg2://{DB}:{password}@127.0.0.1:{self.db_port}/{DB}"
            ),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__SECRET_KEY": keys["api"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt"],
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "tasks"),
            "AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY": str(
                self.logs / "dag-processor"
            ),
            "VIDEOSTYLE_SCRATCH_DIR": str(self.home / "scratch"),
            **self.extra_env,
        }

    def _keys(self) -> dict[str, str]:
        """Keys every component must share (Fernet, JWT, API session), made once per folder."""
        path = self.home / "keys.json"
        if not path.exists():
            keys = {
                "fernet": Fernet.generate_key().decode(),
                "jwt": secrets.token_urlsafe(32),
                "api": secrets.token_urlsafe(32),
            }
            path.touch(mode=0o600)
            path.write_text(json.dumps(keys))
        return dict(json.loads(path.read_text()))

    def _db_password(self) -> str:
        path = self.home / "postgres-password"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        return path.read_text().strip()

    def _spawn(
        self, name: str, argv: list[str], env: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Start a component in its own session (so stopping it reaches its children)."""
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
            )
        # Reaped when it exits, so it neither lingers as a zombie of this process nor is dropped
        # still running (a ResourceWarning); the thread dies with this process, the child not.
        threading.Thread(target=proc.wait, name=f"reap {name}", daemon=True).start()
        return {"pid": proc.pid, "started": _started_at(proc.pid)}

    def _run(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            done = subprocess.run(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=ROOT, check=False,
            )  # fmt: skip
        if done.returncode != 0:
            tail = "".join(log.read_text(errors="replace").splitlines(True)[-30:])
            raise ServiceError(f"{name} failed (exit {done.returncode}); {log}:\n{tail}")

    def _start_azurite(self) -> dict[str, Any]:
        try:
            argv = azurite.azurite_argv(self.blob_port, self.home / "azurite")
        except azurite.AzuriteError as exc:
            raise ServiceError(str(exc)) from None
        started = self._spawn("azurite", argv)
        wait_for("Azurite", lambda: azurite.port_open(self.blob_port), timeout_s=60)
        return started

    # PostgreSQL refuses to run as root: as root, its files belong to the `postgres` user.
    def _as_postgres(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, text=True, capture_output=True, check=False, **kwargs)

    def _start_postgres(self) -> dict[str, Any]:
        pg = _postgres_bin()
        data = self.home / "postgres"
        log = self.logs / "postgres.log"
        log.touch()
        if os.geteuid() == 0:
            # The postgres user must reach its folder: open the path to it, keep the data private.
            postgres = pwd.getpwnam("postgres")
            for folder in (self.home, *self.home.parents):
                if folder.stat().st_mode & 0o001 == 0:
                    folder.chmod(folder.stat().st_mode | 0o001)
            data.mkdir(mode=0o700, exist_ok=True)
            os.chown(data, postgres.pw_uid, postgres.pw_gid)
            os.chown(log, postgres.pw_uid, postgres.pw_gid)
        if not (data / "PG_VERSION").exists():
            pwfile = self.home / "initial-password"
            pwfile.write_text(self._db_password())
            if os.geteuid() == 0:
                os.chown(pwfile, postgres.pw_uid, postgres.pw_gid)
            init = self._as_postgres(
                [str(pg / "initdb"), "-D", str(data), "-U", DB, "--pwfile", str(pwfile),
                 "--auth", "scram-sha-256", "-E", "UTF8", "--no-locale"]
            )  # fmt: skip
            pwfile.unlink()
            if init.returncode != 0:
                raise ServiceError(f"initdb failed: {init.stderr}")
        options = f"-c listen_addresses=127.0.0.1 -p {self.db_port} -c unix_socket_directories=''"
        start = self._as_postgres(
            [str(pg / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]
        )
        if start.returncode != 0:
            raise ServiceError(f"PostgreSQL did not start: {start.stdout}{start.stderr}\n{log}")
        return {"data": str(data), "bin": str(pg)}

    def _create_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.db_port,
            user=DB,
            password=self._db_password(),
            dbname="postgres",
        )
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,))
                if cur.fetchone() is None:
                    cur.execute(f"CREATE DATABASE {DB}")
        finally:
            conn.close()

    def _healthy(self) -> bool:
        """The API server answers and reports every component healthy."""
        try:
            health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return False
        return all(
            health.get(part, {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def _dags_parsed(self, login: dict[str, str]) -> bool:
        """Both DAGs are in the UI: the DAG processor has serialized them."""
        token = httpx.post(f"{self.url}/auth/token", json=login, timeout=30).raise_for_status()
        found = httpx.get(
            f"{self.url}/api/v2/dags",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=30,
        ).raise_for_status()
        return {PROCESS_DAG_ID, WATCH_DAG_ID} <= {d["dag_id"] for d in found.json()["dags"]}

    def login(self) -> dict[str, str]:
        """SimpleAuthManager's generated admin password."""
        path = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        wait_for("the admin password file", path.exists, timeout_s=60)
        users = json.loads(path.read_text())
        user = next(iter(users))
        return {"username": user, "password": users[user]}

    def _write_state(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state, indent=1))

    # --- stopping -------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop what `up()` recorded, Airflow first and storage last; the names stopped."""
        if not self.state_file.exists():
            return []
        state = json.loads(self.state_file.read_text())
        stopped = []
        for name, proc in reversed(list(state["pids"].items())):
            if _stop_session(proc["pid"], proc["started"]):
                stopped.append(name)
        if "postgres" in state:
            pg = state["postgres"]
            done = self._as_postgres(
                [f"{pg['bin']}/pg_ctl", "-D", pg["data"], "-m", "fast", "stop"]
            )
            if done.returncode == 0:
                stopped.append("postgres")
        self.state_file.unlink()
        return stopped

    def state(self) -> dict[str, Any]:
        """What `up()` recorded: the components' pids, ports and folders."""
        return dict(json.loads(self.state_file.read_text()))

    def sessions(self) -> dict[int, str]:
        """Each component's process session (its pid as leader) and name."""
        state = self.state()
        sessions = {proc["pid"]: name for name, proc in state["pids"].items()}
        if "postgres" in state:  # pg_ctl starts the postmaster as a session leader
            postmaster = Path(state["postgres"]["data"], "postmaster.pid").read_text().split()[0]
            sessions[int(postmaster)] = "postgres"
        return sessions

    def memory_mb(self) -> dict[str, float]:
        """Memory of each component with its children (MiB): proportional set sizes, so pages
        that forked workers share are counted once."""
        sessions = self.sessions()
        usage = dict.fromkeys(sessions.values(), 0.0)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                session = int(stat.read_text().rsplit(")", 1)[1].split()[3])
                if session not in sessions:
                    continue
                smaps = (stat.parent / "smaps_rollup").read_text()
            except OSError:
                continue
            pss_kb = next(
                int(line.split()[1]) for line in smaps.splitlines() if line.startswith("Pss:")
            )
            usage[sessions[session]] += pss_kb / 1024
        return {name: round(mb, 1) for name, mb in usage.items()}


def _stop_session(pid: int, started: str | None) -> bool:
    """SIGTERM the session `pid` leads, then SIGKILL what is left; only if it is still ours."""
    if _started_at(pid) != started:
        return False  # gone, or the pid now names another process
    for sig, grace in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 5)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + grace
        while _session_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not _session_alive(pid):
            return True
    return True


def _session_alive(session: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--home", type=Path, default=ROOT / ".live")
    args = parser.parse_args()
    service = LiveService(home=args.home.resolve())
    if args.action == "down":
        stopped = service.down()
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        return
    if args.action == "status":
        if not service.state_file.exists():
            raise SystemExit("not running: `make up` starts it")
        for name, mb in service.memory_mb().items():
            print(f"{name:<14} {mb:8.1f} MiB")
        return
    print("starting Azurite, PostgreSQL and Airflow (about a minute) ...", flush=True)
    state = service.up()
    login = state["login"]
    print(
        f"\nAirflow UI   {service.url}  (login {login['username']} / {login['password']})\n"
        f"Upload       a video to container videos-in of the Azurite account below; "
        f"videostyle_watch starts its run within seconds\n"
        f"Storage      {service.blob_connection_string}\n"
        f"Outputs      container videos-out, as <video>/<style>.mp4 with .png preview and "
        f".json report\n"
        f"Logs         {service.logs}/\n"
        f"Stop         make down"
    )


if __name__ == "__main__":
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is missing: run `make system`")
    main()

"""`make up`'s service: every component live, bound to 127.0.0.1, with what the DAGs need."""

import os

import psutil

from scripts.live_service import LiveService
from tests.live.api import AirflowApi
from videostyle_airflow.config import BLOB_CONN_ID, PROCESS_DAG_ID, WATCH_DAG_ID
from videostyle_airflow.provision import POOLS, VARIABLES

COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def test_every_component_reports_healthy(api: AirflowApi) -> None:
    health = api.get("/monitor/health")
    assert {part: health[part]["status"] for part in COMPONENTS} == dict.fromkeys(
        COMPONENTS, "healthy"
    )


def test_what_the_dags_need_is_provisioned(api: AirflowApi) -> None:
    pools = {p["name"]: p["slots"] for p in api.get("/pools")["pools"]}
    assert {name: spec.slots for name, spec in POOLS.items()}.items() <= pools.items()
    variables = {v["key"]: v["value"] for v in api.get("/variables")["variables"]}
    assert VARIABLES.items() <= variables.items()
    assert api.get(f"/connections/{BLOB_CONN_ID}")["conn_type"] == "wasb"
    dags = {d["dag_id"]: d for d in api.get("/dags")["dags"]}
    assert dags.keys() == {PROCESS_DAG_ID, WATCH_DAG_ID}
    # Both on from the start: the watch is the intake, and a paused process DAG never runs.
    assert not dags[WATCH_DAG_ID]["is_paused"]
    assert not dags[PROCESS_DAG_ID]["is_paused"]
    assert api.get("/importErrors")["total_entries"] == 0


def test_every_listening_socket_is_on_loopback(live_service: LiveService) -> None:
    sessions = live_service.sessions()
    listening = {}
    for conn in psutil.net_connections("inet"):
        if conn.status != psutil.CONN_LISTEN or conn.pid is None:
            continue
        try:
            session = os.getsid(conn.pid)
        except ProcessLookupError:
            continue
        if session in sessions:
            assert conn.laddr, conn  # an inet socket that listens has its address
            listening[conn.laddr.port] = (sessions[session], conn.laddr.ip)
    assert listening[live_service.api_port][0] == "api-server"
    assert listening[live_service.blob_port][0] == "azurite"
    assert listening[live_service.db_port][0] == "postgres"
    assert {ip for _, ip in listening.values()} == {"127.0.0.1"}, listening

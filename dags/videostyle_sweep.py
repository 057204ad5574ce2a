"""Sweep: delete the MPIJobs and Secrets that tries of videostyle_process left on Kubernetes.

Only under the Kubernetes launcher (Variable VIDEOSTYLE_LAUNCHER=kubernetes): under the local
launcher nothing runs on a cluster and this file defines no DAG. What it deletes, and why that
is safe: videostyle_airflow/kubernetes/sweep.py.
"""

from datetime import datetime, timedelta

from airflow.sdk import DAG

from videostyle.steps.table import STEPS
from videostyle_airflow.config import OWNER, PROCESS_DAG_ID
from videostyle_airflow.launchers import configured_launcher

SWEEP_DAG_ID = "videostyle_sweep"
# The steps' longest time limit (score's), each task's execution_timeout: no try lives longer.
LONGEST_TRY = max(step.time_limit for step in STEPS.values())

DOC_MD = f"""
### Delete what {PROCESS_DAG_ID}'s tries left on Kubernetes

Every hour, deletes each MPIJob and Secret labelled `videostyle/task-run` (only the Kubernetes
launcher's tries create them) that is older than the longest try of `{PROCESS_DAG_ID}` plus a
margin: such an object belongs to no try, and an MPIJob left behind would hold its GPU nodes.
Objects without that label are never touched. Its task's return value names what it deleted.
"""

if configured_launcher() == "kubernetes":
    # Imported here: under the local launcher, parsing loads no Kubernetes client.
    from videostyle_airflow.kubernetes.config import load_kubernetes_config
    from videostyle_airflow.kubernetes.sweep import SWEEP_MARGIN, SweepOrphansOperator

    config = load_kubernetes_config()
    with DAG(
        dag_id=SWEEP_DAG_ID,
        description=f"Delete the MPIJobs and Secrets {PROCESS_DAG_ID}'s tries left behind",
        schedule="@hourly",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        # On from the start: an orphan holds GPU nodes until it runs.
        is_paused_upon_creation=False,
        tags=["videostyle", "kubernetes"],
        default_args={
            "owner": OWNER,
            "retries": 2,
            "retry_delay": timedelta(minutes=1),
            "execution_timeout": timedelta(minutes=10),
        },
        doc_md=DOC_MD,
    ) as dag:
        SweepOrphansOperator(
            task_id="sweep",
            namespace=config.namespace,
            kubernetes_conn_id=config.kubernetes_conn_id,
            max_age=LONGEST_TRY + SWEEP_MARGIN,
        )

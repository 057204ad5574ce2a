"""Airflow connections as the tests hand them to Airflow: AIRFLOW_CONN_* values."""

import json


def wasb_connection_uri(connection_string: str) -> str:
    """An AIRFLOW_CONN_* value: a wasb connection holding `connection_string` in its extras."""
    return json.dumps({"conn_type": "wasb", "extra": {"connection_string": connection_string}})

"""The Airflow side of videostyle: DAG building blocks that launch the videostyle CLI.

Tasks pass names (videos, jobs, blobs) through XCom, never data: blob storage is the hand-off.
"""

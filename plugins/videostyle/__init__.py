"""Neural style transfer for video, step by step: preprocess, score (MPI), stitch, publish.

This package never imports Airflow: containers, Airflow tasks and users all call its CLI.
"""

"""Ids derived from names: safe for the CLI and Airflow, stable, and never shared."""

import re

from videostyle_airflow.ids import job_id_for_run, run_id_for_video

SAFE = re.compile(r"[A-Za-z0-9._-]+")


def test_run_ids_of_look_alike_videos_differ() -> None:
    names = ["a/b.mp4", "a_b.mp4", "a b.mp4", "-a/b.mp4", "ü" * 300]
    run_ids = [run_id_for_video(name, "v1") for name in names]
    assert len(set(run_ids)) == len(names)
    assert all(SAFE.fullmatch(run_id) and len(run_id) <= 100 for run_id in run_ids)
    assert run_ids == [run_id_for_video(name, "v1") for name in names]


def test_each_version_of_a_video_has_its_own_run() -> None:
    assert run_id_for_video("a.mp4", "v1") != run_id_for_video("a.mp4", "v2")


def test_job_id_is_safe_and_stable() -> None:
    run_id = "manual__2026-11-24T02:59:13.680892+00:00"
    assert job_id_for_run(run_id) == job_id_for_run(run_id)
    assert SAFE.fullmatch(job_id_for_run(run_id))
    assert job_id_for_run(run_id) != job_id_for_run(run_id.replace(":", "_"))

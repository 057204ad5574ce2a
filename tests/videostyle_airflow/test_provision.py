"""Provisioning's containers, created in Azurite: every store's, the styles container included."""

import pytest
from azure.storage.blob import BlobServiceClient

from videostyle_airflow.provision import create_containers


def test_create_containers_makes_every_stores_container_once_and_keeps_existing_ones(
    blob_connection: str, azurite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = f"{blob_connection}-p"
    monkeypatch.setenv("VIDEOSTYLE_INPUTS_URL", f"az://{fresh}-in/uploads")
    monkeypatch.setenv("VIDEOSTYLE_WORK_URL", f"az://{fresh}-work")
    monkeypatch.setenv("VIDEOSTYLE_OUTPUTS_URL", f"az://{fresh}-out")
    monkeypatch.setenv("VIDEOSTYLE_STYLES_URL", f"az://{fresh}-in/styles")  # shares a container
    service = BlobServiceClient.from_connection_string(azurite)
    service.create_container(f"{fresh}-out").upload_blob("kept.mp4", b"video")

    created = create_containers()

    assert created == [f"{fresh}-in", f"{fresh}-work", f"{fresh}-out"]
    assert {c.name for c in service.list_containers(name_starts_with=fresh)} == set(created)
    assert service.get_container_client(f"{fresh}-out").download_blob("kept.mp4").readall()
    monkeypatch.setenv("VIDEOSTYLE_STYLES_URL", f"az://{fresh}-styles")
    assert create_containers()[-1] == f"{fresh}-styles"
    assert service.get_container_client(f"{fresh}-styles").exists()

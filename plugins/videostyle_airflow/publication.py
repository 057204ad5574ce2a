"""Where a person finds a published video: links on the publish task, an asset event per output.

Both read publish's result (its XCom `return_value`, `videostyle.steps.publish.publication`):
every blob it wrote named with its URI, and the report's key figures.

- Extra links "Styled video", "Preview" and "Report" open that one blob in the browser through
  a read-only SAS for it alone, signed from the wasb connection (the key never leaves Airflow).
- `announce_publication` records an event of the output's asset, the figures as its extra,
  through the asset alias PUBLISHED_VIDEOS: the Assets view lists every styled video.
"""

import logging
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import Any, ClassVar, Protocol, cast
from urllib.parse import quote

from airflow.sdk import Asset, AssetAlias, BaseOperator, BaseOperatorLink, Context, Variable
from airflow.sdk.bases.xcom import BaseXCom
from airflow.sdk.execution_time.xcom import XCom
from airflow.sdk.types import TaskInstanceKey

from videostyle.steps.publish import KEY_FIGURES
from videostyle_airflow import credentials

log = logging.getLogger(__name__)

# The outlet a publish task declares to have its outputs announced (`outlets=[PUBLISHED_VIDEOS]`).
PUBLISHED_VIDEOS = AssetAlias(name="videostyle_published_videos")
# Airflow Variable (or env AIRFLOW_VAR_VIDEOSTYLE_LINK_TTL_HOURS): how long a link opens its blob.
LINK_TTL_VARIABLE = "VIDEOSTYLE_LINK_TTL_HOURS"
DEFAULT_LINK_TTL_HOURS = 24.0
URI_KINDS = ("output", "preview", "report")


class _SignsWithConnection(Protocol):
    wasb_conn_id: str


def link_ttl() -> timedelta:
    """How long a link opens its blob.

    Airflow computes a task's extra links once, in the worker as the try ends, and the UI shows
    what was stored then: a link stops opening this long after its try finished (a day by
    default, for whoever looks at the run that day); later, a rerun of publish signs anew.
    """
    return timedelta(hours=float(Variable.get(LINK_TTL_VARIABLE, default=DEFAULT_LINK_TTL_HOURS)))


def container_and_blob(uri: str) -> tuple[str, str]:
    """`az://container/name` (or abfs://) → (container, name).

    Not urlsplit: a blob name may hold `#` or `?`, which it would cut off as fragment or query.
    """
    scheme, _, rest = uri.partition("://")
    container, _, blob = rest.partition("/")
    if scheme not in ("az", "abfs") or not container or not blob:
        raise ValueError(f"{uri!r} is not az://container/blob: links need Azure, not folders")
    return container, blob


class PublishedBlobLink(BaseOperatorLink):
    """A read-only SAS URL of one blob that publish wrote, for `link_ttl()`; none before then."""

    kind: ClassVar[str]  # which of the result's URIs: one of URI_KINDS

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        result = XCom.get_value(ti_key=ti_key, key=BaseXCom.XCOM_RETURN_KEY)
        if not result:  # the try failed before publishing
            return ""
        container, blob = container_and_blob(result[f"{self.kind}_uri"])
        conn_id = cast(_SignsWithConnection, operator).wasb_conn_id
        return credentials.blob_read_url(conn_id, container, blob, ttl=link_ttl())


class StyledVideoLink(PublishedBlobLink):
    name = "Styled video"
    kind = "output"


class PreviewLink(PublishedBlobLink):
    name = "Preview"
    kind = "preview"


class ReportLink(PublishedBlobLink):
    name = "Report"
    kind = "report"


LINKS: tuple[BaseOperatorLink, ...] = (StyledVideoLink(), PreviewLink(), ReportLink())


def published_asset(output_uri: str) -> Asset:
    """The asset of one output: named container/blob as a person reads it, its URI escaped.

    Airflow keeps az:// URIs as they are (no provider normalises the scheme) but drops what
    follows a `#`, so the name's characters are percent-encoded in the URI.
    """
    container, blob = container_and_blob(output_uri)
    return Asset(name=f"{container}/{blob}", uri=f"az://{container}/{quote(blob)}")


def announce_publication(
    context: Context, result: Mapping[str, Any], *, outlets: Collection[object]
) -> None:
    """Record an event of the output's asset through PUBLISHED_VIDEOS, its figures as extra.

    Only for a task with PUBLISHED_VIDEOS among its `outlets`: Airflow drops the events of an
    alias the task does not declare.
    """
    if PUBLISHED_VIDEOS not in outlets:
        return
    asset = published_asset(result["output_uri"])
    extra = {figure: result[figure] for figure in KEY_FIGURES}
    extra |= {f"{kind}_uri": result[f"{kind}_uri"] for kind in URI_KINDS}
    context["outlet_events"][PUBLISHED_VIDEOS].add(asset, extra=extra)
    log.info("Announced %s on asset alias %s", asset.name, PUBLISHED_VIDEOS.name)

"""A person in a real browser (Debian's Chromium, driven by Playwright) against the live service:
log in, trigger videostyle_process from its form, watch the run in the grid, open the output.

The run it starts also shows the scoring progress in the task log. Screenshots of every step
land in build/ui/, a last one on failure; docs/ui-*.png are copies of the form and the finished
run from such a run.
"""

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from azure.storage.blob import BlobServiceClient
from playwright.sync_api import Browser, Page, expect, sync_playwright

from scripts.live_service import ROOT, LiveService
from tests.live.api import AirflowApi
from tests.media import make_clip
from videostyle_airflow.config import PROCESS_DAG_ID, WATCH_DAG_ID

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root, and quiet: this machine reaches no Google service.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "build" / "ui"
VIDEO = "ui/harbour clip.mp4"
STYLE = "wheat-field"
TASKS = ("record_claim", "preprocess", "score", "stitch", "publish")
RUN_TIMEOUT_S = 600
# A rank scores this clip for longer than the progress interval, so a line comes mid-run.
FRAMES = 600
# Large enough that scoring outlasts a progress interval (5 s) where bf16 styles fast: 320x180.
SIZE = (320, 180)
PROGRESS = re.compile(r"progress job: (\d+)/(\d+) frames \(\d+%\), [\d.]+ frames/s, ETA (\d+) s")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Shots:
    """Numbered screenshots of one test, in build/ui/."""

    def __init__(self, page: Page) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page = page
        self.count = 0

    def take(self, name: str) -> Path:
        self.count += 1
        path = SCREENSHOTS / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=path)
        return path


@pytest.fixture(scope="module")
def ui_run(
    browser: Browser,
    live_service: LiveService,
    api: AirflowApi,
    blob_service: BlobServiceClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Everything a person did and saw, from login to the opened output."""
    clip = make_clip(tmp_path_factory.mktemp("ui") / "clip.mp4", frames=FRAMES, size=SIZE)
    # Intake paused, as by a person who styles by hand: the upload starts no run of its own.
    api.set_paused(WATCH_DAG_ID, True)
    blob_service.get_blob_client("videos-in", VIDEO).upload_blob(clip.read_bytes())
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    shots = Shots(page)
    seen: dict[str, Any] = {"clip": clip}
    try:
        login = live_service.login()
        page.goto(live_service.url)
        page.get_by_label("Username").fill(login["username"])
        page.get_by_label("Password").fill(login["password"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_service.url}/")

        page.goto(f"{live_service.url}/dags/{PROCESS_DAG_ID}")
        page.get_by_role("button", name="Trigger").first.click()
        form = page.get_by_role("dialog")
        form.locator("#element_video").fill(VIDEO)
        # The style is a dropdown of the 26 names: open it, type to filter, pick.
        form.locator("#element_style").click()
        page.keyboard.type(STYLE)
        page.keyboard.press("Enter")
        shots.take("trigger-form")
        with page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/dagRuns")
        ) as posted:
            form.get_by_role("button", name="Trigger").click()
        run_id = posted.value.json()["dag_run_id"]
        seen["run_id"] = run_id

        seen["progress_while_running"] = _progress_while_scoring(api, run_id)
        # The grid refreshes itself while the run is active: watch its state badge settle.
        run_url = f"{live_service.url}/dags/{PROCESS_DAG_ID}/runs/{quote(run_id, safe='')}"
        page.goto(run_url)
        run_state = page.get_by_test_id("state-badge").first
        expect(run_state).to_have_text(re.compile("Success|Failed"), timeout=RUN_TIMEOUT_S * 1000)
        seen["run_state_shown"] = run_state.inner_text()
        for task in TASKS:
            expect(page.get_by_test_id(f"grid-{run_id}-{task}").first).to_be_visible()
        seen["run"] = api.run(PROCESS_DAG_ID, run_id)

        # The links are on the task's Details tab, in the grid's view of the run.
        page.goto(f"{run_url}/tasks/publish/details")
        link = page.get_by_role("link", name="Styled video")
        link.wait_for()
        shots.take("publish-links")
        with page.context.expect_page() as opened:
            link.click()
        output_page = opened.value
        output_page.wait_for_load_state()
        seen["output_url"] = output_page.url
        yield seen
    except BaseException:
        shots.take("failure")
        raise
    finally:
        page.close()
        api.set_paused(WATCH_DAG_ID, False)


def _progress_while_scoring(api: AirflowApi, run_id: str) -> list[str]:
    """The job progress lines in the score task's log, read while it is still running."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        score = api.task_instances(PROCESS_DAG_ID, run_id)["score"]
        if score["state"] in ("success", "failed", "upstream_failed"):
            return []
        if score["state"] == "running":
            lines = PROGRESS.findall(api.log(PROCESS_DAG_ID, run_id, "score", 1))
            midway = [line for line in lines if int(line[0]) < int(line[1])]
            if midway:
                return [f"{done}/{total} ETA {eta} s" for done, total, eta in midway]
        time.sleep(1)
    return []


@pytest.mark.integration
def test_a_run_triggered_from_the_form_succeeds_and_its_output_opens(
    ui_run: dict[str, Any], api: AirflowApi, blob_service: BlobServiceClient
) -> None:
    assert ui_run["run_state_shown"] == "Success"
    assert ui_run["run"]["state"] == "success"
    assert ui_run["run"]["conf"]["video"] == VIDEO
    assert ui_run["run"]["conf"]["style"] == STYLE
    states = {
        t: ti["state"] for t, ti in api.task_instances(PROCESS_DAG_ID, ui_run["run_id"]).items()
    }
    assert states == dict.fromkeys(TASKS, "success")
    # The link the browser opened serves the published video, byte for byte, and no key.
    report = api.xcom(PROCESS_DAG_ID, ui_run["run_id"], "publish")
    url = ui_run["output_url"]
    assert "sig=" in url
    assert "AccountKey" not in url
    served = httpx.get(url, timeout=60).raise_for_status().content
    assert hashlib.sha256(served).hexdigest() == report["sha256"]
    stored = blob_service.get_blob_client("videos-out", report["output"]).download_blob().readall()
    assert served == stored


@pytest.mark.integration
def test_scoring_progress_shows_in_the_task_log_before_the_task_ends(
    ui_run: dict[str, Any],
) -> None:
    print(f"\nprogress read while scoring ran: {ui_run['progress_while_running']}")
    assert ui_run["progress_while_running"], "no mid-run progress line while score ran"

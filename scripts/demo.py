"""`make demo`: Azurite up, a video in, the Airflow DAG run by `airflow dags test`, a result out.

Everything runs on this machine: Azurite stands in for Azure Blob Storage, the DAG runs with the
local launcher (subprocesses, mpirun for scoring).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from scripts.azurite import (
    AzuriteError,
    azurite_connection_string,
    free_port,
    start_azurite,
)
from scripts.footage import real_clip
from videostyle.defaults import BUILTIN_MODEL, DEFAULT_STYLE
from videostyle.media.ffmpeg import probe
from videostyle.models.registry import MODELS, job_options, output_name
from videostyle.settings import Settings
from videostyle.steps.publish import published_report, sha256_of
from videostyle.storage import Stores
from videostyle_airflow.looks import model_options

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".demo"
BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--video",
        type=Path,
        help="your own video (default: real footage, Big Buck Bunny or, to anonymize, carphone)",
    )
    parser.add_argument("--model", default=BUILTIN_MODEL, help=f"one of {', '.join(MODELS)}")
    parser.add_argument("--style", default=DEFAULT_STYLE, help=f"{BUILTIN_MODEL}'s style")
    parser.add_argument("--style-image", type=Path, help="painting's style image (a local file)")
    parser.add_argument("--ranks", type=int, default=2)
    args = parser.parse_args()
    DEMO.mkdir(exist_ok=True)
    # Anonymizing needs faces: the carphone sequence has one, Big Buck Bunny none.
    footage = "carphone_pristine.mp4" if args.model == "anonymize" else "bigbuckbunny.mp4"
    source = (args.video or real_clip(footage)).resolve()
    if not source.is_file():
        raise SystemExit(f"{source} is not a file")

    port = free_port()
    connection = azurite_connection_string(port)
    env = dict(
        os.environ,
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        AIRFLOW_HOME=str(DEMO / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_VIDEOSTYLE_BLOB=json.dumps(
            {"conn_type": "wasb", "extra": {"connection_string": connection}}
        ),
        VIDEOSTYLE_SCRATCH_DIR=str(DEMO / "scratch"),
    )
    try:
        azurite = start_azurite(port, DEMO / "azurite")
    except AzuriteError as exc:
        raise SystemExit(str(exc)) from None
    try:
        os.environ["AZURE_STORAGE_CONNECTION_STRING"] = connection  # for this script's uploads
        settings = Settings()
        service = BlobServiceClient.from_connection_string(connection)
        urls = (settings.inputs_url, settings.work_url, settings.outputs_url, settings.styles_url)
        for url in urls:
            if not service.get_container_client(url.removeprefix("az://")).exists():
                service.create_container(url.removeprefix("az://"))
        stores = Stores(settings)
        stores.inputs.upload(source, source.name)
        print(f"uploaded {source.name} to {stores.inputs.uri(source.name)}")
        conf = {"video": source.name, "model": args.model, "ranks": args.ranks}
        if args.model == BUILTIN_MODEL:
            conf["style"] = args.style
        if args.style_image is not None:
            stores.styles.upload(args.style_image, args.style_image.name)
            conf["style_image"] = args.style_image.name
            print(f"uploaded {args.style_image.name} to {stores.styles.uri(args.style_image.name)}")
        options = json.loads(model_options(conf))
        look = output_name(args.model, job_options(args.model, options))

        subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL
        )
        started = time.monotonic()
        log = DEMO / "airflow-dags-test.log"
        print(f"running videostyle_process by airflow dags test (log: {log}) ...", flush=True)
        with log.open("w") as out:
            ran = subprocess.run(
                [
                    str(BIN / "airflow"),
                    "dags",
                    "test",
                    "videostyle_process",
                    "-c",
                    json.dumps(conf),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        took = time.monotonic() - started
        if ran.returncode != 0:
            print("".join(log.read_text().splitlines(keepends=True)[-40:]))
            raise SystemExit(f"the DAG run failed: see {log}")

        report = published_report(stores.outputs, f"{source.name}/{look}.json")
        if report is None:
            raise SystemExit("the run succeeded but published no report")
        styled = stores.outputs.download(report["output"], DEMO / "output" / report["output"])
        if sha256_of(styled) != report["sha256"]:
            raise SystemExit(f"{styled} does not match its report's SHA-256")
        png = stores.outputs.download(report["preview"], DEMO / "output" / report["preview"])
    finally:
        azurite.terminate()
        azurite.wait()
    print(f"\nstyled video: {styled}\n  (blob {stores.outputs.uri(report['output'])})")
    print(f"preview (input | styled): {png}")
    frames_in, frames_out = (probe(p, timeout=60).frame_count for p in (source, styled))
    print(
        f"frames: {frames_in} in, {frames_out} out at {report['fps']} fps; "
        f"look {look} ({report['model']}); {took:.0f} s through Airflow"
    )
    for step, timing in report["timings"].items():
        print(f"  {step:<10} {timing['seconds']:7.1f} s")


if __name__ == "__main__":
    main()

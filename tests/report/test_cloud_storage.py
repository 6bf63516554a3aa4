"""A sweep on an object store, end to end: `vaeray sweep` writes to ``s3://``, the results API and `vaeray report`
read it back without Ray, and the dry run reads the ledger there.

The object store is moto's S3 server on a loopback port (a real HTTP S3 API, in this process), reached through
the standard ``AWS_ENDPOINT_URL`` variable, which is also how a user points vaeray at MinIO or another
S3-compatible store. Nothing leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

from vaeray import results

REPO = Path(__file__).resolve().parents[2]
VAERAY = Path(sys.executable).parent / "vaeray"
SWEEP = "s3://vaeray-test/studies"
TINY = [
    "train.steps=40", "train.log_every=10", "train.checkpoint_every=20", "eval.every=20",
    "eval.metrics={mig: {num_train: 300, batch_size: 300}}", "sweep.scheduler=null", f"sweep.storage={SWEEP}",
]  # fmt: skip


@pytest.fixture(scope="module")
def s3_env():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # pyarrow's S3 filesystem in this process (the results API) reads the same variables
    import boto3  # installed with moto

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="vaeray-test")
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


def vaeray(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {**os.environ, **env, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([str(VAERAY), *args], capture_output=True, text=True, cwd=cwd, timeout=600, env=full)


def test_sweep_on_s3_is_read_back_by_the_results_api_report_and_dry_run(s3_env, tmp_path):
    sets = [a for item in TINY for a in ("--set", item)]
    r = vaeray("sweep", str(REPO / "sweeps" / "quickstart.yaml"), *sets, cwd=tmp_path, env=s3_env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"results: {SWEEP}/quickstart/results.parquet (4 trials)" in r.stdout
    assert not list(tmp_path.iterdir())  # nothing written locally: everything went to the bucket

    df = results.load(f"{SWEEP}/quickstart")
    assert len(df) == 4 and (df["status"] == "completed").all() and (df["steps"] == 40).all()
    assert sorted(df["seed"]) == [0, 0, 1, 1] and df["mig"].between(0, 1).all()
    # the table the sweep wrote equals what the API assembles from the trial files it reads over S3
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    fs, path = pafs.FileSystem.from_uri(f"{SWEEP}/quickstart/results.parquet")
    written = pq.read_table(path, filesystem=fs).to_pandas().set_index("trial_id")
    for _, row in df.iterrows():
        assert row["mig"] == pytest.approx(float(written.loc[row["trial_id"], "mig"]), rel=0, abs=1e-12)
    history = results.load_history(f"{SWEEP}/quickstart")
    assert set(history["trial_id"]) == set(df["trial_id"]) and history["step"].max() == 40
    # by name with --storage, as a user types it
    assert results.load("quickstart", storage=SWEEP)["trial_id"].tolist() == df["trial_id"].tolist()

    rep = vaeray("report", f"{SWEEP}/quickstart", "--out", str(tmp_path / "report"), cwd=tmp_path, env=s3_env)
    assert rep.returncode == 0, rep.stderr[-2000:]
    table = pd.read_csv(tmp_path / "report" / "configurations_quickstart.csv")
    agg = results.aggregate(df, ["mig"]).set_index("config_hash")
    assert len(table) == 2
    for _, row in table.iterrows():
        assert row["mig_mean"] == pytest.approx(agg.loc[row["config_hash"], "mig_mean"], abs=1e-12)

    dry = vaeray("sweep", str(REPO / "sweeps" / "quickstart.yaml"), *sets, "--dry-run", cwd=tmp_path, env=s3_env)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "0 of 4 trials to run (4 already in the ledger)" in dry.stdout + dry.stderr

"""Every access path side by side: one ``fab sweep --backend alluxio,s3,posix,native`` on the
testbed with Alluxio FUSE mounted (posix goes through it), each path's throughput as a
fraction of Alluxio's own Java client (StressClientIOBench)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from .fabrun import fab, write_inventory

pytestmark = pytest.mark.integration

PATHS = ("alluxio", "s3", "posix", "native")


def test_one_sweep_puts_every_path_beside_the_native_client(fuse_testbed, tmp_path):
    inv = write_inventory(fuse_testbed, tmp_path / "inv.yaml", nodes=2, dst="/it-paths/sweep")
    run = fab(
        tmp_path, inv, "sweep", "--backend", ",".join(PATHS), "--rounds", "1", "--no-warmup",
        "--duration", "1s", timeout=600,
    )  # fmt: skip
    assert run.code == 0, run.text
    assert "sweep: the native points are not verified" in run.out
    assert "write / baseline" in run.out and "read / baseline" in run.out
    assert "/ baseline: ratio of the medians to the point of backend=native" in run.out
    rows = {line.split()[0]: line for line in run.out.splitlines() if line.split()[:1] in
            [[p] for p in PATHS]}  # fmt: skip
    assert set(rows) == set(PATHS), run.out
    (found,) = (tmp_path / "results" / "sweeps").glob("sweep-*.json")
    doc = json.loads(found.read_text())
    assert doc["baseline"] == "backend=native"
    for point in doc["points"]:
        assert point["error"] is None, point
        for phase in ("write", "read"):
            figures = point["figures"][phase]
            versus = figures["vs_baseline"]
            assert versus["baseline"] == "backend=native", versus
            native = next(p for p in doc["points"] if p["values"]["backend"] == "native")
            expected = (
                figures["aggregate_throughput"] / (native["figures"][phase]["aggregate_throughput"])
            )
            assert versus["value"] == pytest.approx(expected, rel=1e-6)
        verified = [r for r in point["runs"] if r.get("figures", {}).get("verify-write")]
        assert not verified or point["values"]["backend"] != "native"
    page = found.with_suffix(".html").read_text()
    assert "beside each point its ratio to backend=native" in page
    svgs = [
        base64.b64decode(d).decode()
        for d in re.findall(r"data:image/svg\+xml;base64,([^']+)", page)
    ]
    ratios = {
        f"{p['figures'][ph]['vs_baseline']['value']:.2f}x"
        for p in doc["points"]
        for ph in ("write", "read")
    }
    assert "1.00x" in ratios  # native against itself
    for ratio in ratios:  # matplotlib keeps each text as a comment beside its glyphs
        assert any(f"<!-- {ratio} -->" in svg for svg in svgs), ratio

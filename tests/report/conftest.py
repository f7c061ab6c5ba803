"""A site built once per session from the real catalog, a small results folder written per
RESULT_SCHEMA (one good result with a PNG, one with a missing figure, one malformed, one folder
without result.json) and a run folder with a doctor diagnosis."""

from __future__ import annotations

import csv
import json
import struct
import zlib
from pathlib import Path

import pytest


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A valid RGB PNG written by hand (signature, IHDR, IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes([200, 60, 40]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def result_record(entry_id: str, title: str, verdict: str, figures: list[str]) -> dict:
    return {
        "schema": 1,
        "id": entry_id,
        "title": title,
        "scale": "fast",
        "claim": {
            "text": "Warm-up keeps large-batch accuracy within half a point.",
            "value": "76.3 %",
            "source": "Table 1",
        },
        "measured": [
            {
                "name": "test accuracy, warm-up",
                "unit": "%",
                "mean": 97.25,
                "std": 0.41,
                "values": [96.8, 97.3, 97.65],
                "seeds": [0, 1, 2],
            },
            {"name": "steps", "unit": "", "mean": 120, "std": None, "values": None, "seeds": None},
        ],
        "thresholds": [
            {
                "quantity": "test accuracy, warm-up",
                "op": ">=",
                "value": 96.5,
                "why": "within 0.5 pt of one worker",
            }
        ],
        "verdict": verdict,
        "reason": "the warm-up arm stays within the margin on every seed",
        "figures": figures,
        "wall_time_s": 12.3,
        "run": {
            "dlskills": "0.1.0",
            "commit": None,
            "code_hash": "abc",
            "torch": "2.13.0",
            "python": "3.11.7",
            "threads": 2,
            "platform": "linux",
            "config": {"batch_size": 512},
            "seeds": [0, 1, 2],
            "started": "2026-12-05T12:00:00Z",
        },
    }


def write_results(root: Path, entries) -> dict[str, str]:
    """Results for two catalog entries plus two broken folders; {role: entry id or folder}."""
    good, partial = entries[0], entries[1]
    (root / good.id / "figures").mkdir(parents=True)
    (root / good.id / "figures" / "curve.png").write_bytes(tiny_png())
    record = result_record(good.id, good.title, "reproduced", ["figures/curve.png"])
    (root / good.id / "result.json").write_text(json.dumps(record), encoding="utf-8")
    (root / partial.id).mkdir()
    record = result_record(partial.id, partial.title, "not reproduced", ["gone.png"])
    (root / partial.id / "result.json").write_text(json.dumps(record), encoding="utf-8")
    (root / "broken").mkdir()
    (root / "broken" / "result.json").write_text('{"id": "1902.09843", ', encoding="utf-8")
    (root / "empty").mkdir()
    (root / "index.json").write_text("{}", encoding="utf-8")
    return {"good": good.id, "not_reproduced": partial.id, "broken": "broken", "empty": "empty"}


def write_run(folder: Path) -> Path:
    """A finished `dlskills train` run without plots (the site draws them) and a doctor report."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": "cnn", "lr": 0.003}), "utf-8")
    summary = {"test_accuracy": 0.9712, "epochs": 2, "environment": {"torch": "2.13.0"}}
    (folder / "summary.json").write_text(json.dumps(summary), "utf-8")
    with open(folder / "metrics.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "train_loss", "val_loss", "val_accuracy"])
        writer.writerow([1, 1.2, 1.0, 0.8])
        writer.writerow([2, 0.6, 0.7, 0.9])
    (folder / "doctor").mkdir()
    diagnosis = {
        "verdict": "WARN",
        "checks": [
            {"name": "init scale", "verdict": "PASS", "value": 1.02, "threshold": 2.0},
            {"name": "dead units", "verdict": "WARN", "value": 0.3, "message": "30 % dead"},
        ],
    }
    (folder / "doctor" / "diagnosis.json").write_text(json.dumps(diagnosis), "utf-8")
    (folder / "doctor" / "gradient_flow.png").write_bytes(tiny_png())
    return folder


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """(site folder, SiteReport, {role: name}) for the whole catalog with results and a run."""
    from dlskills import catalog
    from dlskills.report.site import build_site

    root = tmp_path_factory.mktemp("site_inputs")
    verified = [e for e in catalog.load() if e.status == "verified"]
    roles = write_results(root / "results", verified)
    run = write_run(root / "runs" / "digits-cnn")
    site = tmp_path_factory.mktemp("site")
    report = build_site(site, results=root / "results", runs=[run], docs=True)
    return site, report, roles

"""The run folder of a training run and the files in it.

``config.yaml`` (the resolved config), ``metrics.jsonl`` (one JSON line per epoch), ``summary.json``,
``last.pt`` (every epoch) and ``best.pt`` (best test accuracy), ``skipped_recordings.txt`` (only when the
datasets left recordings out) and ``tb/`` (TensorBoard). Only the main process writes here.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from ..errors import ConfigError
from .checkpoint import atomic_save
from .config import TrainConfig, save_config

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
SKIPPED_FILE = "skipped_recordings.txt"
TENSORBOARD_DIR = "tb"


def location(cfg: TrainConfig) -> Path:
    """The config's ``out``, or ``runs/<name>-<neuron>-<time>``, with any character other than letters, digits,
    ``.``, ``_`` and ``-`` written as ``_`` (a neuron named ``package.module:Class`` would otherwise put a
    colon in the path, which Windows and some tools refuse)."""
    if cfg.out:
        return Path(cfg.out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / re.sub(r"[^\w.-]", "_", f"{cfg.name}-{cfg.neuron}-{stamp}", flags=re.ASCII)


def refuse_existing_run(out: Path) -> None:
    """A new run must not write over the checkpoints of another one."""
    if (out / LAST_CHECKPOINT).exists():
        raise ConfigError(
            f"run folder {out} already holds a checkpoint; continue it with --resume {out} or choose another --out"
        )


def prepare(out: Path, cfg: TrainConfig, start_epoch: int, skipped: list) -> None:
    """Make the folder (or take it over from the checkpoint of epoch ``start_epoch``) and write the config
    and the list of recordings left out."""
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / CONFIG_FILE)
    trim_metrics(out / METRICS_FILE, start_epoch)
    write_skipped(out / SKIPPED_FILE, skipped)


def trim_metrics(path: Path, last_epoch: int) -> None:
    """Drop lines for epochs after the checkpoint (written by a run killed before its next checkpoint)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["epoch"] <= last_epoch]
    path.write_text("".join(ln + "\n" for ln in keep))


def write_skipped(path: Path, skipped: list) -> None:
    """The recordings the datasets left out (``skip_corrupt``), one per line; no file when none were."""
    if not skipped:
        path.unlink(missing_ok=True)  # a resumed run whose recordings were repaired since
        return
    lines = ["# recordings left out by the dataset option skip_corrupt=true: split, recording, samples, problem"]
    lines += [f"{split}\t{src}\t{n}\t{problem}" for split, src, problem, n in skipped]
    path.write_text("\n".join(lines) + "\n")


def save_epoch(out: Path, state: dict, metrics: dict, best: bool) -> None:
    """The checkpoint of an epoch (``last.pt``, and ``best.pt`` when ``best``) and its metrics line."""
    atomic_save(state, out / LAST_CHECKPOINT)
    if best:
        atomic_save(state, out / BEST_CHECKPOINT)
    with open(out / METRICS_FILE, "a") as fh:
        fh.write(json.dumps(metrics) + "\n")


def write_summary(out: Path, summary: dict, resumed: bool) -> None:
    """Write ``summary.json``; a resumed run adds the wall time of the runs before it to ``summary``."""
    path = out / SUMMARY_FILE
    if resumed and path.exists():
        summary["wall_s"] += json.loads(path.read_text()).get("wall_s", 0.0)
    path.write_text(json.dumps(summary, indent=2) + "\n")


def divergence_note(out: Path, epoch: int, step: int) -> str:
    """Where a run stopped on a non-finite loss, and which checkpoint it can go on from."""
    last = out / LAST_CHECKPOINT
    where = f"last good checkpoint: {last}" if last.exists() else "no checkpoint yet"
    return f"at epoch {epoch}, step {step}; stopping ({where})"

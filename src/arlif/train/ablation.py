"""The offline ablation: every neuron variant on the digits benchmark over several seeds.

Each (variant, seed) is an ordinary training run in ``<out>/<variant>/seed<k>``; a finished run is reused,
an unfinished one resumed, so an interrupted ablation continues where it stopped. A stored run made with
other settings (say 1 epoch, when 3 are asked for) is an error, never silently reused. After training, the final
model's firing rate, SOPs and energy are measured on the whole test split.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from ..analysis.energy import energy_report
from ..errors import ConfigError
from .config import TrainConfig, load_config
from .evaluation import load_model, test_inputs
from .loop import train

VARIANTS = {
    "arlif": "AR-LIF",
    "arlif_no_threshold_adjust": "AR-LIF w/o threshold adjustment",
    "arlif_no_adaptive_reset": "AR-LIF w/o adaptive reset",
    "lif_soft": "LIF, soft reset",
    "lif_hard": "LIF, hard reset",
    "plif": "PLIF",
    "clif": "CLIF",
}


# keys that may differ between a stored run and the ablation asking for it: they do not change results
_IGNORED_ON_REUSE = {"out", "device", "workers", "data_root", "tensorboard"}


def _check_reusable(folder: Path, wanted: TrainConfig) -> None:
    """A run in ``folder`` is reused (or resumed) only if it was made with ``wanted``'s settings; otherwise a
    table would mix results of other settings under this setup's heading."""
    stored = load_config(folder / "config.yaml").to_dict()
    diff = {
        k: (stored[k], v) for k, v in wanted.to_dict().items() if k not in _IGNORED_ON_REUSE and stored.get(k) != v
    }
    if diff:
        changes = ", ".join(f"{k}: {a!r} there, {b!r} asked" for k, (a, b) in sorted(diff.items()))
        raise ConfigError(
            f"{folder} holds a run made with other settings ({changes}). Use another --out for these settings, "
            f"or delete that folder to retrain it"
        )


def run_one(base: TrainConfig, variant: str, seed: int, out: Path) -> dict:
    folder = out / variant / f"seed{seed}"
    cfg = replace(base, neuron=variant, seed=seed, out=str(folder), tensorboard=False, name=f"ablation-{variant}")
    if (folder / "summary.json").exists() or (folder / "last.pt").exists():
        _check_reusable(folder, cfg)
    if (folder / "summary.json").exists():
        summary = json.loads((folder / "summary.json").read_text())
    elif (folder / "last.pt").exists():
        summary = train(None, resume=folder, verbose=False)
    else:
        summary = train(cfg, verbose=False)
    model, cfg, _ = load_model(folder / "last.pt")
    report = energy_report(model, test_inputs(cfg, 10**9, 256, "cpu"))
    return {
        "variant": variant,
        "seed": seed,
        "best_acc": summary["best_acc"],
        "final_acc": summary["final_acc"],
        "best_epoch": summary["best_epoch"],
        "firing_rate": report.totals["firing_rate"],
        "sops": report.totals["sops"],
        "energy_uj": report.totals["energy_pj"] / 1e6,
        "neuron_update_ops": report.totals["neuron_update_ops"],
        "wall_s": summary["wall_s"],
    }


def _ms(values: list[float], fmt: str) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return format(mean, fmt)
    return f"{format(mean, fmt)} ± {format(statistics.stdev(values), fmt)}"


def markdown_table(rows: list[dict], base: TrainConfig, seeds: list[int]) -> str:
    lines = [
        "| neuron | best acc (%) | final acc (%) | firing rate | SOPs / sample | energy (µJ / sample) "
        "| neuron-update ops / sample |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, label in VARIANTS.items():
        rs = [r for r in rows if r["variant"] == variant]
        if not rs:
            continue
        lines.append(
            f"| {label} (`{variant}`) | {_ms([r['best_acc'] for r in rs], '.2f')} | "
            f"{_ms([r['final_acc'] for r in rs], '.2f')} | {_ms([r['firing_rate'] for r in rs], '.4f')} | "
            f"{_ms([r['sops'] for r in rs], '.4g')} | {_ms([r['energy_uj'] for r in rs], '.4g')} | "
            f"{statistics.fmean(r['neuron_update_ops'] for r in rs):.4g} |"
        )
    setup = (
        f"{base.model} on {base.dataset}, T={base.T}, {base.epochs} epochs, batch {base.batch_size}, "
        f"lr {base.lr}, {base.optimizer}, seeds {seeds}"
    )
    notes = [
        "",
        f"Setup: {setup}. Mean ± sample std over seeds.",
        "Best = highest test accuracy over all epochs (selected on the test set, as the paper's reference runs "
        "report); final = last epoch. Firing rate, SOPs and energy: final model on the whole test split "
        "(E_MAC 4.6 pJ, E_AC 0.9 pJ; see `arlif.analysis.energy` for the counting convention).",
    ]
    return "\n".join(lines + notes) + "\n"


def run_ablation(
    base: TrainConfig, seeds: list[int], out: str | Path, variants: list[str] | None = None, progress=print
) -> tuple[list[dict], str]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    variants = variants or list(VARIANTS)
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown ablation variant(s) {unknown}; choose from {list(VARIANTS)}")
    rows = []
    total = len(variants) * len(seeds)
    for i, (variant, seed) in enumerate(((v, s) for v in variants for s in seeds), 1):
        t0 = time.time()
        row = run_one(base, variant, seed, out)
        rows.append(row)
        progress(
            f"[{i}/{total}] {variant:26s} seed {seed}: best {row['best_acc']:.2f}% final {row['final_acc']:.2f}% "
            f"rate {row['firing_rate']:.4f} energy {row['energy_uj']:.4g} µJ ({time.time() - t0:.0f}s)"
        )
    table = markdown_table(rows, base, seeds)
    (out / "ablation.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows, table

"""The multi-seed ablation: every neuron variant on one benchmark (any training config), over several seeds.

Each (variant, seed) is an ordinary training run in ``<out>/<variant>/seed<k>``; a finished run is reused,
an unfinished one resumed, so an interrupted ablation continues where it stopped. A stored run made with
other settings (say 1 epoch, when 3 are asked for) is an error, never silently reused. After training, the final
model's firing rate, SOPs and energy are measured on the whole test split.

The report gives, per variant, mean ± std and the 95% Student-t interval over seeds, and a paired comparison
of AR-LIF with every other variant over the seeds they share (:mod:`arlif.analysis.stats`).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from ..analysis.energy import energy_report
from ..analysis.stats import paired_difference, summarize
from ..errors import ConfigError
from ..neurons.registry import ablation_variants, get_neuron
from .config import TrainConfig, load_config
from .evaluation import load_model, test_inputs
from .loop import train


def default_variants() -> list[str]:
    """The variants an ablation runs unless told otherwise (the registry's ablation set), the reference
    first: every other variant is compared with it."""
    return [e.name for e in ablation_variants()]


def reference_variant() -> str:
    return default_variants()[0]


def _label(variant: str) -> str:
    return get_neuron(variant).label or variant

# what is summarised over seeds: key in a row -> (column heading, number format)
METRICS = {
    "final_acc": ("final acc (%)", ".2f"),
    "best_acc": ("best acc (%)", ".2f"),
    "firing_rate": ("firing rate", ".4f"),
    "energy_uj": ("energy (µJ / sample)", ".4g"),
    "sops": ("SOPs / sample", ".4g"),
}
PAIRED = {  # compared pairwise with AR-LIF: key -> (heading, format)
    "final_acc": ("final acc (pp)", "+.2f"),
    "best_acc": ("best acc (pp)", "+.2f"),
    "firing_rate": ("firing rate", "+.4f"),
    "energy_uj": ("energy (µJ)", "+.4g"),
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
        summary = train(None, resume=folder, overrides={"data_root": cfg.data_root, "device": cfg.device},
                        verbose=False)  # fmt: skip
    else:
        summary = train(cfg, verbose=False)
    model, cfg, _ = load_model(folder / "last.pt")
    report = energy_report(model, test_inputs(replace(cfg, data_root=base.data_root), 10**9, 256, "cpu"))
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


def statistics_of(rows: list[dict]) -> tuple[dict, dict]:
    """``(per_variant, paired)``: per variant and metric :func:`summarize` over its seeds; per variant other
    than AR-LIF and metric :func:`paired_difference` (AR-LIF minus the variant) over the shared seeds."""
    by_variant: dict[str, dict[int, dict]] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], {})[r["seed"]] = r
    per_variant = {
        v: {key: summarize([r[key] for r in runs.values()]) for key in (*METRICS, "wall_s", "neuron_update_ops")}
        for v, runs in by_variant.items()
    }
    paired = {}
    reference = reference_variant()
    ref = by_variant.get(reference)
    if ref:
        for v, runs in by_variant.items():
            if v != reference and set(runs) & set(ref):
                paired[v] = {
                    key: paired_difference({s: r[key] for s, r in ref.items()}, {s: r[key] for s, r in runs.items()})
                    for key in PAIRED
                }
    return per_variant, paired


def _cell(s: dict, fmt: str) -> str:
    """``mean ± std [low, high]`` (just the mean for a single seed)."""
    if s["std"] is None:
        return format(s["mean"], fmt)
    lo, hi = s["ci"]
    return f"{format(s['mean'], fmt)} ± {format(s['std'], fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def _diff_cell(d: dict, fmt: str) -> str:
    """``+mean [low, high]``, marked when the interval excludes 0."""
    if d["ci"] is None:
        return f"{format(d['mean'], fmt)} (1 seed)"
    lo, hi = d["ci"]
    mark = " **excl. 0**" if d["excludes_zero"] else ""
    return f"{format(d['mean'], fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]{mark}"


def setup_text(base: TrainConfig, seeds: list[int]) -> str:
    opts = ", ".join(f"{k}={v}" for k, v in sorted(base.dataset_options.items()))
    model_kw = ", ".join(f"{k}={v}" for k, v in sorted(base.model_kwargs.items()))
    return (
        f"config {base.name}: {base.model}{f' ({model_kw})' if model_kw else ''} on {base.dataset}"
        f"{f' ({opts})' if opts else ''}, T={base.T}, {base.epochs} epochs, batch {base.batch_size}, "
        f"lr {base.lr}, {base.optimizer}, weight decay {base.weight_decay}, seeds {seeds}"
    )


def _table_head(head: list[str]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]


def markdown_table(rows: list[dict], base: TrainConfig, seeds: list[int]) -> str:
    per_variant, paired = statistics_of(rows)
    head = ["neuron", "seeds", *(h for h, _ in METRICS.values()), "neuron-update ops / sample", "wall (s / run)"]
    lines = _table_head(head)
    ref_label = _label(reference_variant())
    for variant, s in per_variant.items():
        cells = [f"{_label(variant)} (`{variant}`)", str(s["final_acc"]["n"])]
        cells += [_cell(s[key], fmt) for key, (_, fmt) in METRICS.items()]
        cells += [f"{s['neuron_update_ops']['mean']:.4g}", f"{s['wall_s']['mean']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        "",
        f"Setup: {setup_text(base, seeds)}.",
        "Cells: mean ± sample std over seeds [95% confidence interval of the mean, Student t with n − 1 degrees "
        "of freedom]. Final = test accuracy after the last epoch (the honest number); best = highest test "
        "accuracy over all epochs (selected on the test set, as the paper's reference runs report: optimistic). "
        "Firing rate, SOPs and energy: final model on the whole test split (E_MAC 4.6 pJ, E_AC 0.9 pJ; see "
        "`arlif.analysis.energy` for the counting convention).",
    ]
    if paired:
        phead = [f"{ref_label} − variant", "shared seeds", *(h for h, _ in PAIRED.values())]
        lines += ["", f"Paired differences, {ref_label} minus each variant, over the seeds both ran:", ""]
        lines += _table_head(phead)
        for variant, d in paired.items():
            cells = [f"{_label(variant)} (`{variant}`)", str(d["final_acc"]["n"])]
            cells += [_diff_cell(d[key], fmt) for key, (_, fmt) in PAIRED.items()]
            lines.append("| " + " | ".join(cells) + " |")
        notes += [
            "Paired: mean of the per-seed differences [95% t interval]; **excl. 0**: the interval excludes 0, "
            "so the difference exceeds the seed-to-seed noise (5% level, each comparison on its own, not "
            f"corrected for the {_count(len(paired))} comparisons). Positive accuracy differences favour "
            f"{ref_label}; positive rate and energy differences mean {ref_label} fires and spends more.",
        ]
    return "\n".join(lines + notes) + "\n"


def _count(n: int) -> str:
    return ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")[n - 1] if 1 <= n <= 9 else str(n)


def _bar(total: int, verbose: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="ablation", unit="run", disable=not verbose or None, dynamic_ncols=True)


def _worker_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _finished_runs(base: TrainConfig, work: list[tuple[str, int]], out: Path, jobs: int):
    """Yield ``(variant, seed, row)`` as each run finishes: one after the other in this process, or ``jobs``
    at a time in worker processes that share the cores (a small model often trains faster per core with one
    thread than with several, so two one-thread runs on two cores take about half the time of two runs in
    a row)."""
    if jobs == 1:
        for variant, seed in work:
            yield variant, seed, run_one(base, variant, seed, out)
        return
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import torch

    threads = max(1, min(torch.get_num_threads(), os.cpu_count() or 1) // jobs)
    # spawn, not fork: a forked child would inherit this process's OpenMP and autograd threads half set up
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_threads, initargs=(threads,)) as pool:
        futures = {pool.submit(run_one, base, v, s, out): (v, s) for v, s in work}
        try:
            for fut in as_completed(futures):
                yield (*futures[fut], fut.result())
        except BaseException:
            for fut in futures:  # stop what has not started; finished runs stay on disk and are reused
                fut.cancel()
            raise


def run_ablation(
    base: TrainConfig,
    seeds: list[int],
    out: str | Path,
    variants: list[str] | None = None,
    progress=print,
    png: str | Path | None = None,
    verbose: bool = True,
    jobs: int = 1,
) -> tuple[list[dict], str]:
    """Train (or reuse) every (variant, seed) run, then write ``<out>/ablation.json`` (runs, statistics,
    setup) and, with ``png``, the accuracy plot. ``progress`` gets one line per finished run; ``verbose``
    shows a progress bar; ``jobs`` runs that many trainings at once in worker processes, each with an equal
    share of this process's CPU threads. Returns ``(rows, markdown)``; the rows are in (variant, seed) order
    whatever order the runs finish in."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # an unknown name is a ValueError that lists the registered ones
    variants = [get_neuron(v).name for v in variants] if variants else default_variants()
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number >= 1, got {jobs!r}")
    work = [(v, s) for v in variants for s in seeds]
    # check every stored run first: a mismatch found after an hour of training would waste that hour
    for v, s in work:
        folder = out / v / f"seed{s}"
        if (folder / "config.yaml").exists() and ((folder / "summary.json").exists() or (folder / "last.pt").exists()):
            _check_reusable(folder, replace(base, neuron=v, seed=s, out=str(folder), tensorboard=False,
                                            name=f"ablation-{v}"))  # fmt: skip
    done: dict[tuple[str, int], dict] = {}
    bar = _bar(len(work), verbose)
    say = bar.write if verbose else progress
    t_start = time.time()
    try:
        if jobs == 1:
            bar.set_description(f"ablation {work[0][0]} seed {work[0][1]}")
        for variant, seed, row in _finished_runs(base, work, out, jobs):
            done[(variant, seed)] = row
            bar.update(1)
            ahead = [k for k in work if k not in done]
            if jobs == 1 and ahead:
                bar.set_description(f"ablation {ahead[0][0]} seed {ahead[0][1]}")
            say(
                f"[{len(done)}/{len(work)}] {variant:26s} seed {seed}: best {row['best_acc']:.2f}% "
                f"final {row['final_acc']:.2f}% rate {row['firing_rate']:.4f} energy {row['energy_uj']:.4g} µJ "
                f"({row['wall_s']:.0f}s training)"
            )
    finally:
        bar.close()
    rows = [done[k] for k in work]
    elapsed = time.time() - t_start
    table = markdown_table(rows, base, seeds)
    per_variant, paired = statistics_of(rows)
    record = {"setup": base.to_dict(), "seeds": list(seeds), "runs": rows, "per_variant": per_variant,
              "paired_vs_arlif": paired, "jobs": jobs, "elapsed_s": elapsed}  # fmt: skip
    (out / "ablation.json").write_text(json.dumps(record, indent=2) + "\n")
    if png is not None:
        from ..analysis.plots import plot_ablation

        plot_ablation(rows, png, title=setup_text(base, seeds))
    return rows, table


def total_wall_s(rows: list[dict]) -> float:
    """Training time of all runs together (as recorded by each run, so reused runs count too)."""
    return float(sum(r["wall_s"] for r in rows))

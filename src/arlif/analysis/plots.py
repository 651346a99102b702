"""PNG plots of runs and models (matplotlib, headless).

* :func:`plot_curves` — loss and accuracy per epoch from a run's ``metrics.jsonl``;
* :func:`plot_neuron_params` — each neuron layer's learned scalars per epoch (as the neuron declares them);
* :func:`plot_layer_rates` — firing rate per neuron layer (bar chart);
* :func:`plot_dynamics` — V, the other states and the effective threshold θ of chosen neurons over T, spikes marked;
* :func:`plot_raster` — spike raster (neurons × time) of one layer for one sample;
* :func:`plot_ablation` — accuracy per neuron variant of an ablation, with 95% intervals over seeds.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ..errors import ArlifError  # noqa: E402
from ..neurons import BaseNeuron, reset_net  # noqa: E402
from ..neurons.base import output_spikes  # noqa: E402
from ..neurons.registry import neuron_classes  # noqa: E402

# what every epoch line of metrics.jsonl holds (see arlif.train.loop)
_METRIC_KEYS = ("epoch", "train_loss", "test_loss", "train_acc", "test_acc")


def read_metrics(run: str | Path) -> list[dict]:
    """The per-epoch records of a run folder (or a metrics.jsonl path)."""
    path = Path(run)
    if path.is_dir():
        path = path / "metrics.jsonl"
        if not path.is_file():
            raise ArlifError(
                f"{path} not found: {run} is not a run folder written by 'arlif train' (or no epoch has finished)"
            )
    elif not path.exists():
        raise ArlifError(f"{path} not found: give a run folder written by 'arlif train'")
    elif path.suffix != ".jsonl":
        # a checkpoint or any other file: the curves come from the folder beside it
        hint = f" ({path.parent})" if (path.parent / "metrics.jsonl").is_file() else ""
        raise ArlifError(
            f"{path} is a file, not a run folder: plots of training curves and learned parameters read the run "
            f"folder that 'arlif train' wrote (it holds metrics.jsonl); pass the folder{hint} instead"
        )
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArlifError(f"{path} could not be read as text ({exc}); is it the metrics.jsonl of a run?") from None
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ArlifError(f"{path}, line {i}: not valid JSON ({exc})") from exc
            missing = [k for k in _METRIC_KEYS if not isinstance(row, dict) or k not in row]
            if missing:
                raise ArlifError(f"{path}, line {i}: not an epoch record of 'arlif train' (no {', '.join(missing)})")
            rows.append(row)
    if not rows:
        raise ArlifError(f"{path} holds no epochs yet")
    return rows


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_curves(run: str | Path, out: str | Path) -> Path:
    rows = read_metrics(run)
    ep = [r["epoch"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(ep, [r["train_loss"] for r in rows], label="train loss")
    ax1.plot(ep, [r["test_loss"] for r in rows], label="test loss (CE of mean logits)")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(ep, [r["train_acc"] for r in rows], label="train top-1")
    ax2.plot(ep, [r["test_acc"] for r in rows], label="test top-1")
    best = max(rows, key=lambda r: r["test_acc"])
    ax2.scatter(
        [best["epoch"]], [best["test_acc"]], color="red", zorder=3, label=f"best {best['test_acc']:.2f}%"
    )
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    ax2.legend()
    fig.suptitle(f"{Path(run).name}: final test {rows[-1]['test_acc']:.2f}%")
    return _save(fig, out)


def plot_neuron_params(run: str | Path, out: str | Path) -> Path:
    rows = read_metrics(run)
    layers = list(rows[-1].get("neuron_params", {}))
    if not layers:
        raise ArlifError("this run's neurons have no learned scalars (the leaky baselines have none): nothing to plot")
    labels = {}  # what each neuron class says about its scalars: a label, or None for one not plotted
    for cls in neuron_classes():
        labels.update(cls.scalar_labels)
    seen = dict.fromkeys(k for n in layers for k in rows[-1]["neuron_params"][n])
    keys = [k for k in seen if labels.get(k, k) is not None]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    ep = [r["epoch"] for r in rows]
    for ax, key in zip(axes[0], keys):
        for name in layers:
            vals = [r["neuron_params"].get(name, {}).get(key, float("nan")) for r in rows]
            ax.plot(ep, vals, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(labels.get(key) or key)
    axes[0][-1].legend(fontsize="small", ncol=1 + len(layers) // 10, loc="best")
    fig.suptitle("learned neuron parameters per layer")
    return _save(fig, out)


def plot_layer_rates(rates: dict[str, float], out: str | Path, title: str = "firing rate per layer") -> Path:
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(rates) + 2), 4))
    ax.bar(range(len(rates)), list(rates.values()))
    ax.set_xticks(range(len(rates)), list(rates), rotation=60, ha="right", fontsize="small")
    ax.set_ylabel("spikes per neuron per step")
    ax.set_title(title)
    return _save(fig, out)


@torch.no_grad()
def record_layer(model: nn.Module, layer: str, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``x`` ([T, 1, ...], one sample) and return the neuron layer's input ``x``, spikes
    ``s``, ``v`` (after reset), its other states (``m`` of AR-LIF, ...) and the effective threshold ``theta``
    (:meth:`arlif.neurons.BaseNeuron.effective_threshold`), each ``[T, neurons]``.
    The layer may run all steps in one call or, inside a recurrence, one step per call."""
    mod = dict(model.named_modules()).get(layer)
    if not isinstance(mod, BaseNeuron):
        names = [n for n, m in model.named_modules() if isinstance(m, BaseNeuron)]
        raise ArlifError(f"{layer!r} is not a neuron layer of this model; neuron layers: {names}")
    seen, steps = {}, []

    def hook(m, args, out):
        if m.step_mode == "s":  # one step per call: the state after the step is the step's V (and m, ...)
            state = {"x": args[0], "s": output_spikes(out)}
            state.update((n, getattr(m, n)) for n in m.state_names if isinstance(getattr(m, n), torch.Tensor))
            steps.append(state)
        else:
            seen.update(x=args[0], s=output_spikes(out))

    handle = mod.register_forward_hook(hook)
    old = mod.store_state
    mod.store_state = True
    model.eval()
    try:
        reset_net(model)
        model(x)
        if steps:
            rec = {k: torch.stack([st[k] for st in steps]) for k in steps[-1]}
        else:
            rec = {"x": seen["x"], "s": seen["s"]}
            for name in mod.state_type._fields:
                if getattr(mod, f"{name}_seq") is not None:
                    rec[name] = getattr(mod, f"{name}_seq")
        fields = mod.state_type._fields
        rec["theta"] = mod.effective_threshold(rec["x"], mod.state_type(*(rec.get(f) for f in fields)))
    finally:
        handle.remove()
        mod.store_state = old
        reset_net(model)
    return {k: v[:, 0].flatten(1).float().cpu() for k, v in rec.items()}


def pick_neurons(spikes: torch.Tensor, k: int) -> list[int]:
    """The ``k`` neurons whose firing rate is closest to 0.5 (the most informative traces)."""
    score = (spikes.mean(0) - 0.5).abs()
    return score.argsort()[:k].tolist()


def plot_dynamics(rec: dict, neurons: list[int], out: str | Path, title: str = "") -> Path:
    T = rec["v"].shape[0]
    t = list(range(1, T + 1))
    fig, axes = plt.subplots(len(neurons), 1, figsize=(8, 2.2 * len(neurons)), sharex=True, squeeze=False)
    for ax, n in zip(axes[:, 0], neurons):
        ax.plot(t, rec["v"][:, n], marker="o", label="V (after reset)")
        ax.plot(t, rec["theta"][:, n], ls="--", label="θ (threshold)")
        for name in rec:  # the other states the neuron carries (AR-LIF's reset memory m, ...)
            if name not in ("x", "s", "v", "theta"):
                ax.plot(t, rec[name][:, n], marker="s", alpha=0.7, label=name)
        fired = [ti for ti, s in zip(t, rec["s"][:, n]) if s > 0]
        ax.scatter(fired, [ax.get_ylim()[1]] * len(fired), marker="v", color="red", zorder=3, label="spike")
        ax.set_ylabel(f"neuron {n}")
    axes[0, 0].legend(fontsize="small", ncol=4, loc="lower left", bbox_to_anchor=(0, 1.02))
    axes[-1, 0].set_xlabel("time step t")
    if title:
        fig.suptitle(title, y=1.0)
    return _save(fig, out)


def plot_raster(spikes: torch.Tensor, out: str | Path, title: str = "", max_neurons: int = 256) -> Path:
    """``spikes`` [T, N]: a dot at (t, n) for every spike of the first ``max_neurons`` neurons."""
    s = spikes[:, :max_neurons]
    t_idx, n_idx = s.nonzero(as_tuple=True)
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.scatter((t_idx + 1).tolist(), n_idx.tolist(), marker="|", s=40, color="black")
    ax.set_xlabel("time step t")
    ax.set_ylabel("neuron")
    ax.set_xlim(0.5, s.shape[0] + 0.5)
    ax.set_ylim(-1, s.shape[1])
    ax.set_title(title or f"spike raster ({s.shape[1]} neurons, rate {float(s.mean()):.3f})")
    return _save(fig, out)


def plot_ablation(rows: list[dict], out: str | Path, title: str = "") -> Path:
    """Final and best test accuracy per neuron variant of an ablation (``arlif ablate``): bars at the mean over
    seeds, error bars spanning the 95% Student-t interval, one dot per seed. Variants appear in the order of
    ``rows``."""
    from .stats import summarize

    variants = list(dict.fromkeys(r["variant"] for r in rows))
    if not variants:
        raise ArlifError("no ablation runs to plot")
    fig_width = max(6.0, 1.3 * len(variants))
    fig, ax = plt.subplots(figsize=(fig_width, 4.5))
    width = 0.38
    span = []  # every value and interval end shown, for the y range
    for j, (key, label) in enumerate((("final_acc", "final epoch"), ("best_acc", "best epoch (selected on test)"))):
        xs, means, errs = [], [], [[], []]
        for i, v in enumerate(variants):
            vals = [r[key] for r in rows if r["variant"] == v]
            s = summarize(vals)
            x = i + (j - 0.5) * width
            xs.append(x)
            means.append(s["mean"])
            lo, hi = s["ci"] if s["ci"] is not None else (s["mean"], s["mean"])
            errs[0].append(s["mean"] - lo)
            errs[1].append(hi - s["mean"])
            span += [*vals, lo, hi]
            ax.scatter([x] * len(vals), vals, s=10, color="black", zorder=3)
        ax.bar(xs, means, width, yerr=errs, capsize=4, label=label, alpha=0.75)
    pad = max(0.5, 0.08 * (max(span) - min(span)))
    ax.set_ylim(max(0.0, min(span) - pad), min(100.0, max(span) + pad))
    ax.set_xticks(range(len(variants)), variants, rotation=25, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(textwrap.fill(title, int(13 * fig_width)), fontsize=8)  # ~13 characters per inch
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out)

"""Statistics over seeds for the ablations: mean, sample std, Student-t confidence intervals, paired differences.

With n runs (seeds) of a setting and values x_1..x_n:

* mean x̄ and sample standard deviation s (n − 1 in the denominator);
* the 95% confidence interval of the mean, x̄ ± t_{0.975, n−1} · s / √n, with t the Student t quantile;
* a **paired** comparison of two settings run with the same seeds: the differences d_k = a_k − b_k over
  the seeds both have, their mean, and the t interval of that mean. Pairing removes what the two settings
  share per seed (the initial weights and the data order), so it detects smaller differences than comparing
  two unpaired intervals. An interval that excludes 0 says the difference is larger than the seed-to-seed
  noise at the 5% level, for that comparison alone (not corrected for making several).

With one value there is no spread: std and the interval are ``None``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom (e.g. 2.776 for p = 0.975,
    df = 4)."""
    if not 0 < p < 1:
        raise ValueError(f"quantile p must be in (0, 1), got {p}")
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    from scipy.stats import t

    return float(t.ppf(p, df))


def summarize(values: Sequence[float], level: float = 0.95) -> dict:
    """``{n, mean, std, ci: (low, high)}`` of ``values``; std and ci are ``None`` for a single value."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("summarize needs at least one value")
    n, mean = len(vals), statistics.fmean(vals)
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "ci": None}
    std = statistics.stdev(vals)
    half = t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci": (mean - half, mean + half)}


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], level: float = 0.95) -> dict:
    """Mean of ``a[seed] − b[seed]`` over the seeds both have, with its t interval.

    Returns ``{n, seeds, mean, std, ci, excludes_zero}``; ``excludes_zero`` is ``None`` when there are fewer
    than two shared seeds (no interval), else whether the interval lies entirely above or below 0.
    """
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("the two settings share no seed, so they cannot be paired")
    s = summarize([a[k] - b[k] for k in seeds], level)
    ci = s["ci"]
    excludes = None if ci is None else bool(ci[0] > 0 or ci[1] < 0)
    return {**s, "seeds": seeds, "excludes_zero": excludes}

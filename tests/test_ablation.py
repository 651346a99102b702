"""The multi-seed ablation: statistics checked against hand calculations, the report, the plot, the command on
MNIST-1D (tiny), reuse and resume."""

import json
import math

import pytest

from arlif.analysis.stats import paired_difference, summarize, t_quantile
from arlif.cli import main as cli
from arlif.train import ablation
from arlif.train.config import load_config


@pytest.mark.parametrize("df, q", [(1, 12.7062047), (2, 4.3026527), (4, 2.7764451), (9, 2.2621572),
                                   (29, 2.0452296)])  # fmt: skip
def test_t_quantiles_match_the_tables(df, q):
    assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-6)
    assert t_quantile(0.025, df) == pytest.approx(-q, abs=1e-6)
    assert t_quantile(0.5, df) == pytest.approx(0.0, abs=1e-12)


def test_summary_by_hand():
    # 1, 2, 3, 4: mean 2.5, s = sqrt(5/3) = 1.2909944; half width t(0.975, 3) · s / 2 = 3.1824463 · 0.6454972
    s = summarize([1, 2, 3, 4])
    assert s["n"] == 4 and s["mean"] == 2.5 and s["std"] == pytest.approx(math.sqrt(5 / 3))
    assert s["ci"] == pytest.approx((2.5 - 2.0542603, 2.5 + 2.0542603), abs=1e-6)
    assert summarize([7.0]) == {"n": 1, "mean": 7.0, "std": None, "ci": None}


def test_paired_difference_by_hand():
    # differences over the shared seeds 0..4: 1, 2, 0, 3, 2 -> mean 1.6, s = sqrt(5.2 / 4) = 1.1401754,
    # s / sqrt(5) = 0.5099020, t(0.975, 4) = 2.7764451 -> half width 1.4157148 -> [0.1842852, 3.0157148]
    a = {0: 90.0, 1: 92.0, 2: 91.0, 3: 93.0, 4: 94.0, 9: 50.0}  # seed 9 has no partner: left out
    b = {0: 89.0, 1: 90.0, 2: 91.0, 3: 90.0, 4: 92.0, 7: 10.0}
    d = paired_difference(a, b)
    assert d["seeds"] == [0, 1, 2, 3, 4] and d["n"] == 5
    assert d["mean"] == pytest.approx(1.6) and d["std"] == pytest.approx(1.1401754, abs=1e-7)
    assert d["ci"] == pytest.approx((0.1842852, 3.0157148), abs=1e-6) and d["excludes_zero"] is True
    # the unpaired intervals of a and b overlap, the paired one does not: pairing is what detects it
    sa, sb = summarize([a[k] for k in range(5)]), summarize([b[k] for k in range(5)])
    assert sa["ci"][0] < sb["ci"][1]
    noisy = paired_difference({0: 1.0, 1: -1.0, 2: 0.5}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert noisy["ci"][0] < 0 < noisy["ci"][1] and noisy["excludes_zero"] is False
    one = paired_difference({0: 2.0}, {0: 1.0, 1: 5.0})
    assert one["mean"] == 1.0 and one["ci"] is None and one["excludes_zero"] is None
    with pytest.raises(ValueError, match="share no seed"):
        paired_difference({0: 1.0}, {1: 1.0})


def _row(variant, seed, final, rate=0.2):
    return {"variant": variant, "seed": seed, "best_acc": final + 0.5, "final_acc": final, "best_epoch": 3,
            "firing_rate": rate, "sops": 1e5, "energy_uj": 0.1, "neuron_update_ops": 1e4, "wall_s": 10.0}  # fmt: skip


def test_report_marks_only_differences_beyond_the_noise(tmp_path):
    from arlif.analysis.plots import plot_ablation

    rows = [_row("arlif", s, 90.0 + s) for s in range(5)]
    rows += [_row("lif_soft", s, 88.0 + s + 0.1 * (-1) ** s) for s in range(5)]  # 2 points lower on every seed
    rows += [_row("plif", s, 90.0 + s + (1.0 if s % 2 else -1.0)) for s in range(5)]  # noise only
    per_variant, paired = ablation.statistics_of(rows)
    assert per_variant["arlif"]["final_acc"]["mean"] == 92.0 and "arlif" not in paired
    assert paired["lif_soft"]["final_acc"]["excludes_zero"] and not paired["plif"]["final_acc"]["excludes_zero"]
    table = ablation.markdown_table(rows, load_config(None), list(range(5)))
    lif = next(ln for ln in table.splitlines() if ln.startswith("| LIF, soft reset") and "excl. 0" in ln)
    plif = [ln for ln in table.splitlines() if ln.startswith("| PLIF")]
    assert lif.count("excl. 0") == 2  # final and best accuracy; rate and energy are equal: no difference
    assert len(plif) == 2 and "excl. 0" not in plif[1]
    assert "92.00 ± 1.58 [90.04, 93.96]" in table  # mean ± std [t interval] of 90..94
    png = plot_ablation(rows, tmp_path / "abl.png", title="test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ablate_mnist1d_reuses_resumes_and_refuses_other_settings(tmp_path, monkeypatch, capsys):
    from arlif.data import mnist_1d

    monkeypatch.setattr(mnist_1d, "default_cache_dir", lambda: tmp_path / "cache")  # not the user's ~/.cache
    out = tmp_path / "abl"
    args = ["ablate", "--dataset", "mnist1d", "--seeds", "2", "--epochs", "1", "--max-steps-per-epoch", "2",
            "-o", "num_samples=200", "--variants", "arlif,lif_hard", "--out", str(out)]  # fmt: skip
    assert cli(args) == 0
    printed = capsys.readouterr().out
    assert "[4/4] lif_hard" in printed and "num_samples=200" in printed
    md = (out / "ABLATION.md").read_text()
    assert md.startswith("# Ablation: spiking_cnn1d on mnist1d (num_samples=200)")
    assert "| LIF, hard reset (`lif_hard`) | 2 |" in md and "Paired differences" in md
    record = json.loads((out / "ablation.json").read_text())
    assert len(record["runs"]) == 4 and record["setup"]["dataset_options"] == {"num_samples": 200}
    assert record["paired_vs_arlif"]["lif_hard"]["final_acc"]["seeds"] == [0, 1]
    assert (out / "ablation.png").is_file()

    # rerun: finished runs are reused (nothing trains), an unfinished one is resumed from its checkpoint
    (out / "lif_hard" / "seed1" / "summary.json").unlink()
    resumed = []
    real_train = ablation.train

    def spy(cfg, resume=None, **kw):
        assert resume is not None, "a finished run was trained again"
        resumed.append(resume)
        return real_train(cfg, resume=resume, **kw)

    monkeypatch.setattr(ablation, "train", spy)
    assert cli(args) == 0
    assert resumed == [out / "lif_hard" / "seed1"] and (out / "lif_hard" / "seed1" / "summary.json").is_file()
    # other settings in the same folder: refused before anything trains
    capsys.readouterr()
    assert cli([*args[:6], "3", *args[7:]]) == 2
    assert "other settings (epochs: 1 there, 3 asked)" in capsys.readouterr().err
    assert cli([*args, "-o", "shuffle=true"]) == 2
    assert "dataset_options" in capsys.readouterr().err


def test_jobs_run_in_worker_processes_and_give_the_rows_a_rerun_reuses(tmp_path, monkeypatch):
    """--jobs 2: the runs train in two spawned workers; the rows come back in (variant, seed) order, and a
    rerun in this process reuses exactly what the workers stored (nothing trains again)."""
    base = load_config(None, {"epochs": 1, "max_steps_per_epoch": 2, "batch_size": 32})
    out = tmp_path / "abl"
    rows, table = ablation.run_ablation(base, [0, 1], out, ["lif_hard", "arlif"], verbose=False, jobs=2,
                                        progress=lambda msg: None)  # fmt: skip
    assert [(r["variant"], r["seed"]) for r in rows] == [("lif_hard", 0), ("lif_hard", 1), ("arlif", 0), ("arlif", 1)]
    record = json.loads((out / "ablation.json").read_text())
    assert record["jobs"] == 2 and record["elapsed_s"] > 0
    assert "| LIF, hard reset (`lif_hard`) | 2 |" in table

    def no_training(*a, **kw):
        raise AssertionError("a run the workers finished was trained again")

    monkeypatch.setattr(ablation, "train", no_training)
    again, _ = ablation.run_ablation(base, [0, 1], out, ["lif_hard", "arlif"], verbose=False, progress=lambda m: None)
    trained = ("variant", "seed", "best_acc", "final_acc", "best_epoch", "wall_s")  # read from the run folders
    assert [[r[k] for k in trained] for r in again] == [[r[k] for k in trained] for r in rows]
    # measured again here, with this process's threads: equal up to the summation order of the convolutions
    assert [r["firing_rate"] for r in again] == pytest.approx([r["firing_rate"] for r in rows], rel=1e-3)
    with pytest.raises(ValueError, match="jobs must be"):
        ablation.run_ablation(base, [0], out, ["arlif"], verbose=False, jobs=0)


def test_cli_refuses_jobs_below_one_before_anything_trains(tmp_path, capsys):
    assert cli(["ablate", "--jobs", "0", "--seeds", "1", "--out", str(tmp_path / "abl")]) == 2
    assert "--jobs must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "abl").exists()

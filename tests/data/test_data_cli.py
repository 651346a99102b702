"""``arlif data list/info/prepare`` run in-process."""

import pytest
from formats import write_cifar, write_cifar10dvs, write_gesture

from arlif.cli import main


def test_data_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "cifar10dvs (aka cifar10-dvs" in out and "200 classes" in out
    assert "options: split, convention" in out
    assert "options: split, convention, size, cache_dir, cache, augment, skip_corrupt" in out
    assert "options: size, cache_dir, cache, augment, skip_corrupt" in out  # dvsgesture


def test_data_help_lists_actions(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("list", "info", "prepare", "arlif data prepare cifar10dvs"):
        assert word in out
    assert main(["data"]) == 0  # no action: help, not a crash


def test_info_counts_per_split_and_class(tmp_path, capsys):
    write_cifar(tmp_path, "cifar10", n=3)
    assert main(["data", "info", "cifar-10", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "layout   OK" in out and "train 15  test 3" in out and "class0" in out


def test_info_dvs_with_option_and_cache_status(tmp_path, capsys):
    write_cifar10dvs(tmp_path, indices=(0, 2, 10, 100, 101), n_events=4)
    argv = ["data", "info", "cifar10dvs", "--root", str(tmp_path), "-o", "split=first90", "--T", "4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "train 40  test 10" in out and "[T=4, 2×48×48]" in out
    assert "airplane" in out and "0 of 50 samples built" in out


def test_info_reads_every_header_and_fails_on_corrupt_recordings(tmp_path, capsys):
    write_cifar10dvs(tmp_path, indices=(0, 100), n_events=4)
    argv = ["data", "info", "cifar10dvs", "--root", str(tmp_path), "--T", "2"]
    assert main(argv) == 0
    assert "layout   OK (folders, index files and the headers of all 20 recordings)" in capsys.readouterr().out
    bad = [tmp_path / "cat" / "cifar10_cat_0.aedat", tmp_path / "ship" / "cifar10_ship_100.aedat"]
    bad[0].write_bytes(b"garbage")
    bad[1].write_bytes(bad[1].read_bytes()[:-1])
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "2 of 20 recordings corrupt (listed below), their 2 samples left out" in captured.out
    assert "train 9  test 9" in captured.out and "layout   OK" not in captured.out
    assert f"{bad[0]}: not an AEDAT 2.0 file" in captured.err
    assert f"{bad[1]}: truncated or corrupt AEDAT 2.0 file" in captured.err and "skip_corrupt=true" in captured.err
    # a Gesture trial whose first packet header is garbled
    root = tmp_path / "g"
    write_gesture(root)
    trial = root / "user02_led.aedat"
    data = trial.read_bytes()
    header_end = data.index(b"#!END-HEADER\r\n") + 14
    trial.write_bytes(data[:header_end] + b"\xff" * 28 + data[header_end + 28 :])
    assert main(["data", "info", "dvsgesture", "--root", str(root)]) == 1
    assert f"{trial}: corrupt AEDAT 3.1 packet header at offset" in capsys.readouterr().err


def test_info_shows_a_progress_bar_over_many_recordings(tmp_path, monkeypatch, capsys):
    import io
    import sys

    import arlif.data.dvs as dvs

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    write_cifar10dvs(tmp_path, indices=(0, 100), n_events=4)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(["data", "info", "cifar10dvs", "--root", str(tmp_path)]) == 0
    assert "checking recordings" not in term.getvalue()  # 10 recordings per split: no bar
    monkeypatch.setattr(dvs, "PROGRESS_FROM", 5)
    assert main(["data", "info", "cifar10dvs", "--root", str(tmp_path)]) == 0
    assert "cifar10dvs train: checking recordings" in term.getvalue() and "/10 [" in term.getvalue()


def test_info_missing_root_prints_layout(tmp_path, capsys):
    assert main(["data", "info", "dvsgesture", "--root", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "trials_to_train.txt" in err and "research.ibm.com" in err and "Traceback" not in err


def test_info_bad_option_syntax(tmp_path, capsys):
    write_cifar(tmp_path, "cifar10", n=1)
    assert main(["data", "info", "cifar10", "--root", str(tmp_path), "-o", "augment"]) == 2
    assert "is not KEY=VALUE" in capsys.readouterr().err


def test_prepare_builds_cache_then_skips(tmp_path, capsys):
    root, cache = tmp_path / "g", tmp_path / "frames"
    write_gesture(root)
    argv = ["data", "prepare", "dvs128gesture", "--root", str(root), "--T", "3", "--cache-dir", str(cache)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "done: 7 samples built, 0 already cached, 0 failed" in out
    assert len(list(cache.rglob("*.npz"))) == 7
    assert main(argv) == 0
    assert "done: 0 samples built, 7 already cached" in capsys.readouterr().out
    assert main(["data", "info", "gesture", "--root", str(root), "--T", "3", "--cache-dir", str(cache)]) == 0
    assert "7 of 7 samples built" in capsys.readouterr().out


def test_prepare_continues_past_corrupt_files_and_fails_at_the_end(tmp_path, capsys):
    write_cifar10dvs(tmp_path, indices=(0, 100), n_events=4)
    bad = [tmp_path / "cat" / "cifar10_cat_0.aedat", tmp_path / "ship" / "cifar10_ship_100.aedat"]
    bad[0].write_bytes(bad[0].read_bytes()[:-1])
    bad[1].write_bytes(b"garbage")
    assert main(["data", "prepare", "cifar10dvs", "--root", str(tmp_path), "--T", "2"]) == 1
    captured = capsys.readouterr()
    assert "done: 18 samples built, 0 already cached, 2 failed" in captured.out
    assert "2 recording(s) could not be read" in captured.err
    for path in bad:
        assert str(path) in captured.err
    assert len(list((tmp_path / "arlif-cache").rglob("*.npz"))) == 18


def test_prepare_lists_recordings_whose_events_fail_after_a_good_header(tmp_path, capsys):
    root = tmp_path / "g"
    write_gesture(root)
    trial = root / "user02_led.aedat"
    trial.write_bytes(trial.read_bytes()[:-5])
    argv = ["data", "prepare", "dvsgesture", "--root", str(root), "--T", "2"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "done: 5 samples built, 0 already cached, 2 failed" in captured.out
    assert f"  {trial}: truncated AEDAT 3.1 file" in captured.err
    assert "now marked" not in captured.err  # one line per file, not the full message
    # marked: from now on the header-level checks report it too
    assert main(["data", "info", "dvsgesture", "--root", str(root), "--T", "2"]) == 1
    assert f"{trial}: truncated AEDAT 3.1 file" in capsys.readouterr().err
    assert main(argv) == 1
    assert "done: 0 samples built, 5 already cached, 2 failed" in capsys.readouterr().out


def test_prepare_static_dataset_has_nothing_to_do(tmp_path, capsys):
    write_cifar(tmp_path, "cifar100", n=1)
    assert main(["data", "prepare", "cifar100", "--root", str(tmp_path), "--T", "4"]) == 0
    assert "no frame cache to prepare (layout OK)" in capsys.readouterr().out
    assert main(["data", "prepare", "cifar100", "--root", str(tmp_path)]) == 0  # static images need no --T
    assert "no frame cache to prepare (layout OK)" in capsys.readouterr().out
    assert main(["data", "prepare", "cifar10dvs", "--root", str(tmp_path)]) == 2
    assert "give --T" in capsys.readouterr().err
    assert main(["data", "info", "cifar10dvs", "--root", str(tmp_path), "-o", "size=abc"]) == 2
    assert "option size must be a positive integer" in capsys.readouterr().err
    assert main(["data", "prepare", "cifar10dvs", "--root", str(tmp_path), "--T", "0"]) == 2
    assert "--T must be a positive" in capsys.readouterr().err


def test_mnist1d_list_info_and_prepare(tmp_path, capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "mnist1d (aka mnist-1d): 10 classes, input 1×40, static" in out
    assert "mnist1d_seq (aka mnist-1d-seq): 10 classes, input 1, temporal, T=40 by default" in out
    argv = ["--root", str(tmp_path), "-o", "num_samples=100"]
    assert main(["data", "prepare", "mnist1d_seq", *argv]) == 0
    out = capsys.readouterr().out
    assert "generated 80 train / 20 test samples, cached in" in out
    assert list((tmp_path / "mnist1d").glob("mnist1d-n100-seed42-*.npz"))
    assert main(["data", "info", "mnist1d", *argv, "-o", "holdout=30"]) == 0
    out = capsys.readouterr().out
    assert "samples  [1×40] float32" in out and "train 50  test 30" in out and "cache    " in out
    assert main(["data", "info", "mnist1d_seq", *argv, "--T", "8"]) == 2
    assert "T must be 40" in capsys.readouterr().err

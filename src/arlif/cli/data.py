"""``arlif data``: list the datasets, check a dataset's files, and build the DVS frame cache."""

from __future__ import annotations

import argparse
import sys

EXAMPLES = """examples:
  arlif data list
  arlif data info cifar10 --root ~/data
  arlif data info cifar10dvs --root ~/data/CIFAR10-DVS -o split=first90
  arlif data prepare cifar10dvs --root ~/data/CIFAR10-DVS --T 8
  arlif data prepare dvsgesture --root ~/data/DvsGesture --T 20 --cache-dir /scratch/frames"""


def register(sub) -> None:
    p = sub.add_parser(
        "data",
        help="list datasets, check a dataset's files, build the DVS frame cache",
        description="Work with the datasets that training reads from --data-root: list them, check that a "
        "dataset's files have the expected layout (and count its samples), and integrate DVS "
        "recordings into cached frames ahead of training.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
    actions = p.add_subparsers(dest="action", metavar="ACTION")

    lst = actions.add_parser(
        "list",
        help="the registered datasets with their classes, input shape and options",
        description="List every registered dataset name (with aliases), its number of classes, the input "
        "shape the models see and the options that -o / dataset_options accept.",
    )
    lst.set_defaults(func=run_list)

    info = actions.add_parser(
        "info",
        help="check a dataset's files and count samples per split and class",
        description="Open both splits of a dataset, which checks the folder layout and the index files "
        "and, for DVS datasets, the header of every recording (no images or events are decoded), then print "
        "the number of samples per split and per class and, for DVS datasets, how much of the frame cache "
        "for --T is built. Exits 1 when recordings are corrupt, naming them.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(info)
    info.add_argument(
        "--T", type=int, default=None, help="frames per sample (DVS only; default: the recipe's T)"
    )
    info.add_argument(
        "--cache-dir", default=None, help="frame cache folder (DVS only; default <root>/arlif-cache)"
    )
    info.set_defaults(func=run_info)

    prep = actions.add_parser(
        "prepare",
        help="integrate every DVS recording into T frames and cache them on disk",
        description="Read every recording of both splits once, integrate its events into T frames "
        "(split by number) and write them to the frame cache, which training then reads instead of "
        "the events. Samples already cached are checked and skipped. A corrupt recording does not stop "
        "the run: all bad files are listed at the end and the exit code is 1.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(prep)
    prep.add_argument(
        "--T", type=int, default=None, help="frames per sample, as the training run will use (DVS datasets: required)"
    )
    prep.add_argument(
        "--cache-dir",
        default=None,
        help="where to write the frames (default <root>/arlif-cache); pass the same folder to training "
        "as dataset option cache_dir",
    )
    prep.set_defaults(func=run_prepare)


def _common(p) -> None:
    p.add_argument("name", metavar="NAME", help="dataset name or alias (see 'arlif data list')")
    p.add_argument("--root", default=None, help="folder that holds the dataset (training's --data-root)")
    p.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dataset option, e.g. -o split=first90 or -o size=48 (values are read as YAML); repeatable",
    )


def _options(pairs: list[str]) -> dict:
    from ..errors import DataError
    from ..train.config import load_yaml  # the config files' reading of values (1e-4 is a number)

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DataError(f"option {pair!r} is not KEY=VALUE")
        out[key.strip()] = load_yaml(value)
    return out


def _build(args, check_all: bool = False):
    """Both splits, with --cache-dir passed on to DVS datasets. ``check_all``: corrupt DVS recordings are
    left out of the splits and listed in their ``skipped`` (the caller reports them) instead of stopping."""
    from ..data import build_datasets, get_dataset_info

    options = _options(args.option)
    known = get_dataset_info(args.name).options
    if args.cache_dir and "cache_dir" in known:
        options["cache_dir"] = args.cache_dir
    if check_all and "skip_corrupt" in known:
        options["skip_corrupt"] = True
    return build_datasets(args.name, args.root, args.T, **options)


def _report_corrupt(failed: list) -> None:
    """List ``(recording, problem)`` on stderr, with how training can leave them out."""
    print(f"{len(failed)} recording(s) could not be read:", file=sys.stderr)
    for src, problem in failed:
        print(f"  {src}: {problem}", file=sys.stderr)
    print(
        "Replace them, or leave them out of training with the dataset option skip_corrupt=true "
        "(a training config's dataset_options; arlif data ... -o skip_corrupt=true).",
        file=sys.stderr,
    )


def run_list(args) -> int:
    from ..data import dataset_names, get_dataset_info

    for name in dataset_names():
        info = get_dataset_info(name)
        if info.temporal:
            kind = f"temporal, T={info.default_T} by default" if info.default_T else "temporal, T must be given"
        else:
            kind = "static"
        aliases = f" (aka {', '.join(info.aliases)})" if info.aliases else ""
        if info.from_data:
            size = "classes and input size from the files"
        else:
            size = f"{info.num_classes} classes, input {_shape(info)}"
        print(f"{info.name}{aliases}: {size}, {kind}")
        print(f"    options: {', '.join(info.options) or 'none'}")
    return 0


def _shape(info) -> str:
    """``C×H×W`` of an image, ``C×L`` of a 1-D signal, ``C`` of one value per step."""
    return "×".join(str(s) for s in (info.in_channels, *info.input_size))


def _counts(ds, n: int) -> list[int]:
    counts = [0] * n
    for y in ds.targets:
        counts[y] += 1
    return counts


def run_info(args) -> int:
    # DVS splits check every recording's header as they are built; build them leaving the corrupt ones out,
    # so that all of them are reported below (and the counts are those training would see with skip_corrupt)
    train, test, info = _build(args, check_all=True)
    skipped = [(src, problem) for ds in (train, test) for src, problem, _ in getattr(ds, "skipped", ())]
    left_out = sum(n for ds in (train, test) for *_, n in getattr(ds, "skipped", ()))
    print(f"dataset  {info.name}" + (f"  (root {args.root})" if args.root else ""))
    if hasattr(train, "sources"):  # event recordings, whose headers were checked
        recordings = len(train.sources) + len(test.sources) + len(skipped)
        if skipped:
            print(
                f"layout   folders OK; {len(skipped)} of {recordings} recordings corrupt (listed below), "
                f"their {left_out} samples left out of the counts"
            )
        else:
            checked = getattr(train, "checks", "the headers")
            print(f"layout   OK (folders, index files and {checked} of all {recordings} recordings)")
    else:
        print("layout   OK")
    shape = _shape(info)
    if info.temporal:
        print(f"samples  [T={train.T}, {shape}] float32 steps, {info.num_classes} classes")
    else:
        print(f"samples  [{shape}] float32, {info.num_classes} classes")
    print(f"split    train {len(train)}  test {len(test)}")
    names = getattr(train, "classes", None) or [str(i) for i in range(info.num_classes)]
    tr, te = _counts(train, info.num_classes), _counts(test, info.num_classes)
    width = max(5, *(len(n) for n in names))
    if info.num_classes <= 20:
        print(f"  {'class':{width}s}  {'train':>6s}  {'test':>6s}")
        for name, a, b in zip(names, tr, te):
            print(f"  {name:{width}s}  {a:6d}  {b:6d}")
    else:
        print(f"  per class: train {min(tr)}..{max(tr)}, test {min(te)}..{max(te)}")
        empty = [n for n, a, b in zip(names, tr, te) if a == 0 or b == 0]
        if empty:
            print(f"  classes with an empty split: {', '.join(empty)}")
    if getattr(train, "cache_path", None) is not None:
        print(f"cache    {train.cache_path}")
    if info.temporal and getattr(train, "cache", None) is not None:
        cached = sum(ds.is_cached(s) for ds in (train, test) for s in ds.samples)
        print(f"cache    {cached} of {len(train) + len(test)} samples built in {train.cache.folder}")
    if skipped:
        _report_corrupt(skipped)
        return 1
    return 0


def run_prepare(args) -> int:
    from tqdm import tqdm

    from ..data import get_dataset_info
    from ..data.cache import CacheWriteError
    from ..errors import CorruptRecording, DataError

    info = get_dataset_info(args.name)
    if info.generated:
        train, test, info = _build(args)
        where = f"cached in {train.cache_path}" if train.cache_path else "not cached"
        print(f"{info.name}: generated {len(train)} train / {len(test)} test samples, {where}")
        return 0
    if info.temporal and args.T is None:
        raise DataError(
            f"{info.name}: give --T, the frames per sample the training run will use (e.g. --T {info.default_T})"
        )
    if args.T is not None and args.T < 1:
        raise DataError(f"--T must be a positive number of frames, got {args.T}")
    if not info.temporal:
        _build(args)  # still check the layout
        print(f"{info.name}: static images are read directly; there is no frame cache to prepare (layout OK)")
        return 0
    if _options(args.option).get("cache") is False:
        raise DataError("prepare builds the frame cache; it cannot run with -o cache=false")
    train, test, info = _build(args, check_all=True)  # go on past corrupt recordings, list them at the end
    jobs = [(ds, src) for ds in (train, test) for src in ds.sources]
    failed = [(src, problem, n) for ds in (train, test) for src, problem, n in ds.skipped]
    built = 0
    total = len(train) + len(test) + sum(n for *_, n in failed)
    print(f"{info.name}: {total} samples from {len(jobs) + len(failed)} recordings, T={train.T}")
    print(f"cache folder: {train.cache.folder}")
    for ds, src in tqdm(jobs, desc=f"prepare {info.name}", unit="file", file=sys.stderr):
        try:
            built += ds.prepare(src)
        except CacheWriteError:
            raise  # the folder is the problem, not this file: stop
        except CorruptRecording as exc:
            failed.append((src, exc.problem, len(ds._by_source[src])))
        except DataError as exc:  # e.g. a file that cannot be read
            failed.append((src, str(exc), len(ds._by_source[src])))
    bad = sum(n for *_, n in failed)
    print(f"done: {built} samples built, {total - built - bad} already cached, {bad} failed")
    if failed:
        _report_corrupt([(src, problem) for src, problem, _ in failed])
        return 1
    return 0

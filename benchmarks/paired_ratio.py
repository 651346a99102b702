"""Paired ratio of two rows of one ``arlif bench --json`` run: for each round, the first row's time over the
second's, then the median and quartiles (``arlif.bench.paired_ratio``). Rows are ``neuron/backend``.

    PYTHONPATH=src python benchmarks/paired_ratio.py benchmarks/results_cpu_xeon_steady.json arlif/cpu lif_soft/cpu
"""

from __future__ import annotations

import argparse
import json
import sys

from arlif.bench import paired_ratio


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", help="the file `arlif bench --json` wrote")
    ap.add_argument("rows", nargs="+", metavar="NEURON/BACKEND",
                    help="two rows (numerator, denominator), or more pairs after them")  # fmt: skip
    args = ap.parse_args(argv)
    if len(args.rows) % 2:
        ap.error(f"give the rows in pairs (numerator denominator); got {len(args.rows)}")
    with open(args.json) as f:
        results = json.load(f)["results"]
    rows = {f"{r['neuron']}/{r['backend']}": r for r in results}
    for num, den in zip(args.rows[::2], args.rows[1::2]):
        missing = [name for name in (num, den) if name not in rows]
        if missing:
            ap.error(f"{args.json} has no row {', '.join(missing)}; it has {', '.join(rows)}")
        if not rows[num].get("times_ms") or not rows[den].get("times_ms"):
            ap.error(
                f"{args.json} has no per-round times (times_ms), which arlif bench records since this script "
                "came with it: run the bench again"
            )
        med, q1, q3 = paired_ratio(rows[num]["times_ms"], rows[den]["times_ms"])
        n = len(rows[num]["times_ms"])
        print(f"{num} / {den}: {med:.3f} (quartiles {q1:.3f}, {q3:.3f}; {n} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reconciliation at 100,000 x 100,000, against comparing every payment with every order.

What is measured: ``schoolsync.reconciliation.reconcile`` on data from the generator with known
truth (``tests/reconciliation/generate.py``: typos, transliteration, name order, diminutives,
feminine forms, fees, delays, missing emails, siblings, instalments, doubles, payments for no
order, orders never paid; about 400 orders a day, so a larger set spans more days, as a larger
school's ledger does). For each size: wall and CPU seconds of the call alone (the data is
generated first, in the same process), the peak resident memory of that process (input
included) and how much it grew during the call, the precision of the verdicts the service acts
on by itself (``matched``, ``duplicate_manual``: order set equal to the truth) and the recall of
the true (payment, order) pairs.

The baseline, in the same run on the same machine: the straightforward way, every payment
against every order with the same hard limits and evidence (order number, email, phone, name
similarity) and the same rules of ambiguity, but no index, no groups (instalments, siblings)
and no doubles, on a 2,000 x 2,000 sample. Its cost grows with the product of the sizes, so its
time per pair, times 100,000 x 100,000, is what it would take on the full set. Each run is a
fresh subprocess (``--child``), so that peak memory is its own.

    .venv/bin/python bench/reconcile.py [--sizes 2000,10000,100000] [--million] [--baseline 2000]

Goal (issue 7): 100,000 x 100,000 in <= 5 s and <= 1 GiB on the 2-core machine, growing about
linearly; precision >= 99.9 %, recall >= 97 %. Exit status 0 when every run finished.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schoolsync.reconciliation import names  # noqa: E402
from schoolsync.reconciliation.contacts import email_key, phone_key, reference_keys  # noqa: E402
from schoolsync.reconciliation.engine import reconcile  # noqa: E402
from schoolsync.reconciliation.models import (  # noqa: E402
    OrderIn,
    PaymentIn,
    ReconcileResult,
    Verdict,
    VerdictKind,
)
from schoolsync.reconciliation.rules import RULES, ReconcileRules  # noqa: E402
from tests.reconciliation.generate import generate, score  # noqa: E402

GOAL_SECONDS = 5.0
GOAL_BYTES = 1 << 30
FULL = 100_000
MIB = 1 << 20


def pairwise(
    orders: list[OrderIn], payments: list[PaymentIn], rules: ReconcileRules, now: datetime
) -> ReconcileResult:
    """Every payment against every order: the same limits, evidence and margin, no index."""
    del now  # no doubles or unpaid orders here
    early, window = rules.early_hours * 3600, rules.window_days * 86400
    name_window = rules.name_window_days * 86400
    reference_window = max(window, rules.reference_window_days * 86400)
    prepared = [
        (o, email_key(o.email), phone_key(o.phone), names.parse_name(o.name)) for o in orders
    ]
    verdicts = []
    for p in payments:
        references = set(reference_keys(p.reference, min_digits=rules.reference_min_digits))
        email, phone, payer = email_key(p.email), phone_key(p.phone), names.parse_name(p.payer_name)
        scored: list[tuple[float, str]] = []
        for order, order_email, order_phone, order_name in prepared:
            if order.currency != p.currency or not rules.amount_fits(
                p.amount_minor, order.amount_minor
            ):
                continue
            delay = (p.paid_at - order.created_at).total_seconds()
            referenced = order.order_id in references
            if not -early <= delay <= (reference_window if referenced else window):
                continue
            similarity = names.similarity(payer, order_name) if payer and order_name else 0.0
            if referenced:
                rule = RULES[0]
            elif email and email == order_email:
                rule = RULES[1]
            elif phone and phone == order_phone:
                rule = RULES[2]
            elif similarity >= rules.name_min_similarity and delay <= name_window:
                rule = RULES[3]
            else:
                continue
            exact = 0.05 if p.amount_minor == order.amount_minor else 0.0
            scored.append((rule.base + 0.2 * similarity + exact, order.order_id))
        scored.sort(reverse=True)
        if not scored:
            verdicts.append(Verdict((p.payment_id,), (), VerdictKind.UNMATCHED_PAYMENT, "", 0, ""))
        elif len(scored) > 1 and scored[0][0] - scored[1][0] < rules.ambiguity_margin:
            verdicts.append(Verdict((p.payment_id,), (), VerdictKind.AMBIGUOUS, "", 0, ""))
        else:
            verdicts.append(
                Verdict((p.payment_id,), (scored[0][1],), VerdictKind.MATCHED, "", 0, "")
            )
    return ReconcileResult(tuple(verdicts))


def child(kind: str, size: int, seed: int) -> dict[str, Any]:
    """One measured run in this process: generate, then time ``kind`` alone."""
    data = generate(size, seed=seed)
    process = psutil.Process()
    before = process.memory_info().rss
    run = reconcile if kind == "engine" else pairwise
    started_cpu, started = time.process_time(), time.perf_counter()
    result = run(data.orders, data.payments, ReconcileRules(), data.now)
    wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    figures = score(result, data.truth)
    return {
        "kind": kind,
        "orders": len(data.orders),
        "payments": len(data.payments),
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_bytes": peak,
        "grew_bytes": max(0, peak - before),
        "input_bytes": before,
        "precision": figures.precision,
        "recall": figures.recall,
        "automatic": figures.automatic,
        "wrong": figures.wrong,
    }


def measure(kind: str, size: int, seed: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(size), str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} at {size}: {done.stderr.strip()[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def print_row(name: str, run: dict[str, Any]) -> None:
    print(
        f"{name:<18}{run['orders']:>9,} x {run['payments']:<9,}{run['wall_s']:>8.2f}"
        f"{run['cpu_s']:>8.2f}{run['peak_bytes'] / MIB:>9.0f}{run['grew_bytes'] / MIB:>8.0f}"
        f"{run['wall_s'] / run['payments'] * 1e6:>9.1f}{run['precision'] * 100:>10.3f}"
        f"{run['recall'] * 100:>8.2f}{run['automatic']:>9,}{run['wrong']:>6}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="2000,10000,100000", help="engine runs [2000,10000,100000]"
    )
    parser.add_argument("--million", action="store_true", help="add 1,000,000 x 1,000,000")
    parser.add_argument("--baseline", type=int, default=2000, help="pairwise sample [2000]")
    parser.add_argument("--seed", type=int, default=7, help="generator seed [7]")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, size, seed = args.child
        print(json.dumps(child(kind, int(size), int(seed))))
        return 0

    sizes = [int(size) for size in args.sizes.split(",") if size]
    if args.million:
        sizes.append(1_000_000)
    print(f"python {sys.version.split()[0]}, {psutil.cpu_count()} CPUs, seed {args.seed}")
    print(
        f"{'run':<18}{'orders x payments':<21}{'wall s':>8}{'CPU s':>8}{'peak MiB':>9}"
        f"{'+MiB':>8}{'µs/pay':>9}{'precision%':>10}{'recall%':>8}{'acted on':>9}{'wrong':>6}"
    )
    try:
        base = measure("pairwise", args.baseline, args.seed)
        print_row("pairwise baseline", base)
        runs = {}
        for size in sizes:
            runs[size] = measure("engine", size, args.seed)
            print_row("engine", runs[size])
    except RuntimeError as exc:
        print(f"bench/reconcile.py: {exc}", file=sys.stderr)
        return 1

    per_pair = base["wall_s"] / (base["orders"] * base["payments"])
    print(f"pairwise: {per_pair * 1e6:.2f} µs per (payment, order) pair")
    if args.baseline in runs:
        same = runs[args.baseline]
        print(
            f"same {args.baseline:,} x {args.baseline:,} sample: pairwise {base['wall_s']:.2f} s, "
            f"engine {same['wall_s']:.3f} s: ratio {base['wall_s'] / same['wall_s']:.0f}"
        )
    for size in sizes:
        run = runs[size]
        guess = per_pair * run["orders"] * run["payments"]
        print(
            f"{size:,} x {size:,}: pairwise would take ~{guess:,.0f} s ({guess / 3600:.1f} h), "
            f"engine {run['wall_s']:.2f} s: ratio {guess / run['wall_s']:,.0f}"
        )
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        growth = runs[large]["wall_s"] / runs[small]["wall_s"]
        print(
            f"growth {small:,} -> {large:,} ({large / small:.0f}x the data): {growth:.1f}x the time"
        )
    if FULL in runs:
        full = runs[FULL]
        met = full["wall_s"] <= GOAL_SECONDS and full["peak_bytes"] <= GOAL_BYTES
        quality = full["precision"] >= 0.999 and full["recall"] >= 0.97
        print(
            f"goal <= {GOAL_SECONDS:.0f} s and <= 1 GiB at {FULL:,}: {'met' if met else 'NOT MET'} "
            f"({full['wall_s']:.2f} s, peak {full['peak_bytes'] / MIB:.0f} MiB); precision >= 99.9 % "
            f"and recall >= 97 %: {'met' if quality else 'NOT MET'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Detection floor: the smallest relative error on ONE element of dW that a gradient check catches.

    python benchmarks/detection.py [--quick] [--out .benchmarks/detection.md]

A wrapper (tests.planted.ScaledElement) multiplies one element of the analytic dW by (1 + r), whatever the
cotangent, for r = 1e-1, 1e-2, ..., 1e-14. A check catches r when it fails and names exactly that element
(ours: the failing elements of W are that one and nothing else fails; torch.autograd.gradcheck: it
returns False, it names no element). The floor is the smallest r caught with every larger r caught too.

Layers (float64, batch 16, 100 -> 10, W ~ N(0, 1/100), seed 0):
  (a) y = tanh(x W + b), declared not complex-safe (tests.planted.TanhFC): central, richardson
  (b) y = x W + b, the complex-safe FullyConnected: central, complex step, richardson
Checkers: ours with the default exhaustive strategy and the method named (its default step and error
model), and torch.autograd.gradcheck with its default tolerances (eps 1e-6, atol 1e-5, rtol 1e-3), exhaustive
and fast_mode=True, on the same NumPy layer wrapped in a torch.autograd.Function (float64).
Two elements per layer: the largest |dW| and one of median |dW| (the floor depends on |g| against the
tolerance's absolute part).

--quick scans r from 1e-1 down and stops at the first miss (the floor, without the misses below it).
Prints two markdown tables (the floors; each scan decade by decade) and writes them to --out.
`make bench-detection` runs it through benchmarks/test_detection.py, which asserts the floors claimed.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradcheck import check  # noqa: E402
from layers import FullyConnected  # noqa: E402
from tests.planted import ScaledElement, TanhFC  # noqa: E402

RS = [10.0 ** -e for e in range(1, 15)]
N, D, F = 16, 100, 10


def problem(seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((N, D)), "W": rng.standard_normal((D, F)) / np.sqrt(D),
            "b": rng.standard_normal(F)}


LAYERS = {
    "(a) tanh(x W + b), not complex-safe": (TanhFC, ["central", "richardson"]),
    "(b) x W + b, complex-safe FC": (FullyConnected, ["central", "complex", "richardson"]),
}


def elements(layer, arrays, seed=0):
    """{label: index} of the largest and a median |dW| (G as the checker draws it for `seed`)."""
    y, cache = layer.forward(**arrays)
    g = np.abs(layer.backward(np.random.default_rng(seed).standard_normal(y.shape), cache)["W"])
    order = np.argsort(g.ravel(), kind="stable")
    out = {}
    for label, flat in (("largest |dW|", order[-1]), ("median |dW|", order[g.size // 2])):
        index = tuple(int(i) for i in np.unravel_index(int(flat), g.shape))
        out[label] = (index, float(g[index]))
    return out


def ours(method):
    def caught(layer, arrays, index):
        report = check(layer, arrays, method=method)
        failing = [(k, e.index) for k, r in report.arrays.items() for e in r.worst if e.failed]
        wrong = sum(r.failed for r in report.arrays.values())
        return (not report.passed) and wrong == 1 and failing == [("W", index)]
    return caught


def torch_checker(fast_mode):
    import torch

    def caught(layer, arrays, index):
        class Fn(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, W, b):
                y, cache = layer.forward(x=x.detach().numpy(), W=W.detach().numpy(), b=b.detach().numpy())
                ctx.cache = cache
                return torch.from_numpy(np.array(y, dtype=np.float64))

            @staticmethod
            def backward(ctx, dy):
                g = layer.backward(dy.detach().numpy(), ctx.cache)
                return tuple(torch.from_numpy(np.array(g[k], dtype=np.float64)) for k in ("x", "W", "b"))

        inputs = tuple(torch.tensor(arrays[k], dtype=torch.float64, requires_grad=True)
                       for k in ("x", "W", "b"))
        ok = torch.autograd.gradcheck(Fn.apply, inputs, fast_mode=fast_mode, raise_exception=False)
        return not ok
    return caught


def checkers():
    out = {f"ours, {m}": ours(m) for m in ("central", "complex", "richardson")}
    try:
        import torch  # noqa: F401
    except ImportError:
        return out, False
    out["torch gradcheck (default tolerances)"] = torch_checker(False)
    out["torch gradcheck fast_mode=True"] = torch_checker(True)
    return out, True


def scan(caught, make, arrays, index, quick):
    """{r: caught?} over RS, largest first (quick: stop after the first miss)."""
    seen = {}
    for r in RS:
        seen[r] = bool(caught(ScaledElement(make(), "W", index, r), arrays, index))
        if quick and not seen[r]:
            break
    return seen


def floor_of(seen):
    floor = None
    for r in RS:
        if not seen.get(r, False):
            break
        floor = r
    return floor


def measure(quick=False, seed=0):
    """Rows of the table: dicts with layer, element, |g|, checker, floor, the caught pattern, and whether
    the unplanted layer passes (our checkers) for a sanity check."""
    arrays = problem(seed)
    found, have_torch = checkers()
    rows = []
    for layer_name, (make, methods) in LAYERS.items():
        for label, (index, size) in elements(make(), arrays, seed).items():
            for name, caught in found.items():
                if name.startswith("ours") and name.split(", ")[1] not in methods:
                    continue
                t0 = time.perf_counter()
                seen = scan(caught, make, arrays, index, quick)
                clean = None
                if name.startswith("ours"):
                    clean = check(make(), arrays, method=name.split(", ")[1]).passed
                rows.append(dict(layer=layer_name, element=f"{label} W{list(index)} = {size:.3g}",
                                 checker=name, floor=floor_of(seen), seen=seen, clean=clean,
                                 seconds=time.perf_counter() - t0))
    return rows, have_torch


def table(rows, have_torch, quick):
    lines = [
        "| layer | planted element | checker | detection floor | caught at r = 1e-1 ... 1e-14 "
        "| right layer passes |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        marks = "".join("x" if row["seen"].get(r) else ("." if r in row["seen"] else " ") for r in RS)
        floor = "none up to 1e-1" if row["floor"] is None else f"{row['floor']:.0e}"
        clean = "-" if row["clean"] is None else ("yes" if row["clean"] else "NO")
        element = row["element"].replace("|", "\\|")  # a literal | inside a markdown cell
        lines.append(f"| {row['layer']} | {element} | {row['checker']} | {floor} | `{marks}` | {clean} |")
    notes = [
        "",
        "x caught (fails, naming that element alone; torch: gradcheck returns False), . missed"
        + (", blank not tried (--quick stops at the first miss)" if quick else "") + ".",
        f"numpy {np.__version__}, Python {platform.python_version()}"
        + (f", torch {_torch_version()}" if have_torch else "; torch not installed: its rows are missing"),
    ]
    return "\n".join(lines + notes)


def _torch_version():
    import torch

    return torch.__version__


def summary(rows):
    """One line per checker, one column per (layer, element): the floors only."""
    columns = list(dict.fromkeys((row["layer"], row["element"]) for row in rows))
    order = ["ours, central", "ours, complex", "ours, richardson"]
    checkers = sorted(dict.fromkeys(row["checker"] for row in rows),
                      key=lambda c: order.index(c) if c in order else len(order))
    floors = {(row["checker"], row["layer"], row["element"]): row["floor"] for row in rows}

    def head(layer, element):
        label, rest = element.split(" W", 1)
        return f"{layer.split(',')[0]}, {label} ({rest.split('= ')[1]})".replace("|", "\\|")

    lines = ["| checker | " + " | ".join(head(*c) for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name in checkers:
        cells = []
        for layer, element in columns:
            if (name, layer, element) not in floors:
                cells.append("n/a")
            else:
                f = floors[(name, layer, element)]
                cells.append("none up to 1e-1" if f is None else f"{f:.0e}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="stop each scan at its first miss")
    parser.add_argument("--out", default=str(ROOT / ".benchmarks" / "detection.md"))
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    rows, have_torch = measure(quick=args.quick)
    text = (summary(rows) + "\n\n" + table(rows, have_torch, args.quick)
            + f"\n\n{time.perf_counter() - t0:.1f} s in all\n")
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()

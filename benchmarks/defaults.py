"""The defaults at the limit, for `make bench-peers --vgg` (benchmarks/peers.py runs each in its own
process): what a user who writes `strategy: directional` or runs `gradcheck run cases` gets.

    directional   FC 7x7x512 -> 4096, batch 16 (102.8M weights), default options (2 joint directions at
                  this size: strategies.directional.default_directions)
    draw          a case's 102.8M-element array (catalogue.arrays.make_array) against numpy's one-thread
                  standard_normal of the same shape, in one process
    case-NAME     each 102.8M-weight catalogue case (run_case: drawing its arrays, then the check) against
                  drawing its arrays + one forward + backward of its layer, in one process
    catalogue     `gradcheck run cases`, wall time of the whole command
Every ratio is taken within one run; each timed call is warmed once first (this VM backs fresh memory
lazily), then the best of `rounds`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIG_CASES = ["fc-7x7x512-4096-batch16-directional", "fc-7x7x512-4096-batch16-sampled",
             "fc-as-conv-7x7x512-4096-batch16-directional", "fc-as-conv-7x7x512-4096-batch16-sampled"]


def best(call, rounds=2, warmup=1):
    for _ in range(warmup):
        call()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t)
        del out  # a kept 0.8 GB result would inflate the next round's peak
    return min(times)


def draw(rounds=3):
    from gradcheck.catalogue.arrays import make_array

    spec = {"shape": [25088, 4096], "scale": 0.0063}
    ours = best(lambda: make_array("W", spec, 0), rounds)
    numpy = best(lambda: np.random.default_rng(0).standard_normal((25088, 4096)), rounds)
    return dict(seconds=ours, numpy=numpy)


def big_case(name, rounds=2):
    from gradcheck.catalogue.case import load_paths
    from gradcheck.catalogue.runner import run_case

    (case,) = [c for c in load_paths([ROOT / "cases"]) if getattr(c, "name", None) == name]

    def yardstick():
        arrays = case.arrays()
        y, cache = case.layer.forward(**arrays)
        return case.layer.backward(np.ones_like(y), cache)

    reports = []

    def checked():
        reports[:] = [run_case(case)]  # the last report only: its arrays are dropped before the next round

    reference = best(yardstick, rounds)
    seconds = best(checked, rounds)
    assert reports[0].passed, str(reports[0])
    return dict(seconds=seconds, reference=reference, forwards=reports[0].forwards)


def catalogue():
    t = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "gradcheck", "run", "cases"], cwd=ROOT, capture_output=True,
                         text=True)
    seconds = time.perf_counter() - t
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return dict(seconds=seconds)


def measurements(ours_check):
    """name -> measurement; ours_check: peers.ours_check (the directional check of the VGG FC layer)."""
    out = {"ours-vgg-directional-default": lambda: ours_check("vgg", None, "directional", rounds=5,
                                                              directions=None),
           "draw-vgg-W": draw, "catalogue": catalogue}
    out.update({f"case-{n}": (lambda n=n: big_case(n)) for n in BIG_CASES})
    return out


def rows(m, gib, array_bytes):
    """The table's rows for the measurements in m (peers' columns: what, time, ratio, memory, how)."""
    fb = m["ours-fwdbwd-vgg"]["seconds"]
    d = m["ours-vgg-directional-default"]
    out = [("**The defaults at the limit (issue 13)**", "", "", "", ""),
           (f"ours, directional, default options ({d['checked'] // 3} joint directions over x, W, b)",
            f"{d['seconds']:.3g} s",
            f"{d['seconds'] / fb:.2f}x our fwd+bwd",
            f"{gib(d['peak'])} process peak = {d['peak'] / array_bytes:.2f}x the layer's arrays",
            f"measured; {d['forwards']} forwards"),
           ]
    w = m["draw-vgg-W"]
    out.append(("drawing a case's 102.8M-element array (make_array, blocks on a thread pool)",
                f"{w['seconds']:.3g} s", f"{w['numpy'] / w['seconds']:.2f}x faster than numpy",
                "", f"measured; numpy's one-thread standard_normal {w['numpy']:.3g} s, same process"))
    for n in BIG_CASES:
        c = m[f"case-{n}"]
        out.append((f"catalogue case {n}", f"{c['seconds']:.3g} s",
                    f"{c['seconds'] / c['reference']:.2f}x drawing + fwd+bwd", "",
                    f"measured; {c['forwards']} forwards; drawing its arrays + one forward+backward "
                    f"{c['reference']:.3g} s, same process"))
    out.append(("the whole catalogue, `gradcheck run cases`", f"{m['catalogue']['seconds']:.3g} s", "", "",
                "measured, wall time of the command"))
    return out

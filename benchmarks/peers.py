"""Ours against the peers, timed in one run: `make bench-peers` (needs the optional extra torch==2.13.0).

    python benchmarks/peers.py [--out peers.md] [--vgg]

Every measurement runs in a fresh subprocess (`--one NAME`), which builds its arrays, runs the measured call
once to warm up (this VM backs fresh memory lazily: a first touch of 1 GB costs ~1 s), then takes the best
of a few runs, and reports seconds and the peak resident memory it added (ru_maxrss minus the resident size
just before the measured call). Peers:

- torch.autograd.gradcheck, exhaustive (fast_mode=False): a few minutes and 10+ GB on these problems (one
  backward per output element, two forwards per input coordinate, dense Jacobians), so it is projected,
  and labelled so: FC from two subsets of the inputs (requires_grad on b only, then on x only) with
  t = t0 + t1 * (coordinates checked); conv, where even batch 1 takes minutes (10,240 outputs), only with
  --torch-conv-exhaustive, as a lower bound 16 x t(batch 1) (inputs and outputs both grow with the batch).
- a one-perturbation-per-forward NumPy loop (cs231n's eval_numerical_gradient on L = sum(G * y)): timed
  on the first coordinates of every array and projected linearly: "projected".
- torch's own forward + backward (float64, CPU) next to ours (target 5).
Ratios are against our exhaustive check of the same problem in the same run. Prints a markdown table and
writes it to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import defaults  # noqa: E402
from benchmarks.conftest import conv_problem, fc_problem, vgg_fc_problem  # noqa: E402

LOOP_SUBSET = 600  # coordinates per array timed for the NumPy loop
VGG_ROUNDS = 5  # best of 5 for the 102.8M-weight layer and its checks (each ~0.3-2 s; this VM wanders by 40%)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def best_of(call, rounds=3, warmup=1):
    for _ in range(warmup):
        call()
    times, out = [], None
    for _ in range(rounds):
        out = None  # the previous result (a 0.8 GB gradient at 100M weights) must not inflate the peak
        t = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t)
    return min(times), out


# -- the measurements (each run in its own process) -----------------------------------------------------

def problem(name):
    from layers import Conv2D, FullyConnected
    if name == "fc":
        return FullyConnected(), fc_problem(), (lambda a: a["x"] @ a["W"] + a["b"])
    if name == "conv":
        return Conv2D(stride=1, pad=2), conv_problem(), None
    return FullyConnected(), vgg_fc_problem(), None


def ours_check(name, method="complex", strategy="exhaustive", rounds=3, directions=1):
    from gradcheck import check
    layer, arrays, _ = problem(name)
    options = dict(strategy=strategy, method=method)  # method None: the checker's default
    if strategy == "directional":
        options["directions"] = directions  # None: the default
    seconds, report = best_of(lambda: check(layer, arrays, **options), rounds=rounds)
    checked = sum(r.checked for r in report.arrays.values())
    assert report.passed, str(report)
    return dict(seconds=seconds, checked=checked, forwards=report.forwards,
                per_coordinate=report.forwards / checked, method=report.method)


def ours_fwd_bwd(name, rounds=20):
    layer, arrays, _ = problem(name)

    def call():
        y, cache = layer.forward(**arrays)
        return layer.backward(np.ones_like(y), cache)

    seconds, _ = best_of(call, rounds=rounds, warmup=2)
    return dict(seconds=seconds)


def torch_tensors(name, grad, batch=None):
    import torch
    _, arrays, _ = problem(name)
    if batch is not None:
        arrays["x"] = arrays["x"][:batch]
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in grad) for k, v in arrays.items()}


def torch_fn(name):
    import torch
    if name == "conv":
        return lambda x, k, b: torch.nn.functional.conv2d(x, k, b, stride=1, padding=2)
    return lambda x, W, b: x.reshape(x.shape[0], -1) @ W + b


def torch_fwd_bwd(name, rounds=20):
    import torch
    t = torch_tensors(name, grad=("x", "W", "k", "b"))
    f = torch_fn(name)

    def call():
        for v in t.values():
            v.grad = None
        y = f(**t)
        y.backward(torch.ones_like(y))

    seconds, _ = best_of(call, rounds=rounds, warmup=2)
    return dict(seconds=seconds)


def torch_gradcheck(name, grad, fast, batch=None):
    import torch
    t = torch_tensors(name, grad=grad, batch=batch)
    f = torch_fn(name)
    order = list(t)

    def call():
        return torch.autograd.gradcheck(lambda *a: f(**dict(zip(order, a, strict=True))),
                                        tuple(t[k] for k in order), eps=1e-6, atol=1e-5, rtol=1e-3,
                                        fast_mode=fast)

    seconds, ok = best_of(call, rounds=1, warmup=0)
    assert ok
    return dict(seconds=seconds, checked=sum(t[k].numel() for k in grad), batch=len(t["x"]))


def numpy_loop(name, subset=LOOP_SUBSET):
    """cs231n-style: one coordinate per perturbation, two forwards each, on a copy of each array."""
    layer, arrays, _ = problem(name)
    y = layer.forward(**arrays)[0]
    G = np.random.default_rng(0).standard_normal(y.shape)
    work = {k: v.copy() for k, v in arrays.items()}
    h = 1e-5
    t0 = time.perf_counter()
    timed = total = 0
    for v in work.values():
        flat = v.reshape(-1)
        total += flat.size
        for i in range(min(subset, flat.size)):
            old = flat[i]
            flat[i] = old + h
            fp = np.sum(G * layer.forward(**work)[0])
            flat[i] = old - h
            fm = np.sum(G * layer.forward(**work)[0])
            flat[i] = old
            _ = (fp - fm) / (2 * h)
            timed += 1
    seconds = time.perf_counter() - t0
    return dict(seconds=seconds * total / timed, measured_seconds=seconds, checked=total, timed=timed)


MEASUREMENTS = {
    "ours-fc-complex": lambda: ours_check("fc", "complex"),
    "ours-fc-central": lambda: ours_check("fc", "central"),
    "ours-conv-complex": lambda: ours_check("conv", "complex"),
    "ours-conv-central": lambda: ours_check("conv", "central"),
    "ours-fwdbwd-fc": lambda: ours_fwd_bwd("fc"),
    "ours-fwdbwd-conv": lambda: ours_fwd_bwd("conv"),
    "torch-fwdbwd-fc": lambda: torch_fwd_bwd("fc"),
    "torch-fwdbwd-conv": lambda: torch_fwd_bwd("conv"),
    "torch-exh-fc-b": lambda: torch_gradcheck("fc", ("b",), fast=False),
    "torch-exh-fc-x": lambda: torch_gradcheck("fc", ("x",), fast=False),
    "torch-exh-conv-b1": lambda: torch_gradcheck("conv", ("x", "k", "b"), fast=False, batch=1),
    "torch-fast-fc": lambda: torch_gradcheck("fc", ("x", "W", "b"), fast=True),
    "torch-fast-conv": lambda: torch_gradcheck("conv", ("x", "k", "b"), fast=True),
    "loop-fc": lambda: numpy_loop("fc"),
    "loop-conv": lambda: numpy_loop("conv"),
    "ours-vgg-directional": lambda: ours_check("vgg", None, "directional", rounds=VGG_ROUNDS),
    "ours-fwdbwd-vgg": lambda: ours_fwd_bwd("vgg", rounds=VGG_ROUNDS),
    "torch-fast-vgg": lambda: torch_gradcheck("vgg", ("x", "W", "b"), fast=True),
}
MEASUREMENTS.update(defaults.measurements(ours_check))


def one(name):
    """Run one measurement in this process; print its JSON (seconds, peak memory added)."""
    before = rss_bytes()
    out = MEASUREMENTS[name]()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out.update(peak_added=max(peak - before, 0), peak=peak)
    print(json.dumps(out))


def measure(name):
    run = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True, cwd=ROOT)
    if run.returncode:
        print(run.stderr, file=sys.stderr)
        raise SystemExit(f"peers: measurement {name} failed")
    out = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"  {name}: {out['seconds']:.4g} s", file=sys.stderr)
    return out


# -- the table ------------------------------------------------------------------------------------------

def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import scipy
    try:
        import torch
        tv = torch.__version__
    except ImportError:
        tv = "not installed"
    load = os.getloadavg()
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}, "
            f"scipy {scipy.__version__}, torch {tv}; load average at start {load[0]:.2f}")


def gib(n):
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


def projected_exhaustive(small, large, total):
    """t = t0 + t1 n through two subset runs (n = coordinates checked), evaluated at n = total."""
    t1 = (large["seconds"] - small["seconds"]) / (large["checked"] - small["checked"])
    t0 = small["seconds"] - t1 * small["checked"]
    return max(t0, 0.0) + t1 * total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / ".benchmarks" / "peers.md"))
    parser.add_argument("--vgg", action="store_true",
                        help="also target 3 (FC 7x7x512 -> 4096: 2.5 GB per process) and the defaults at the "
                             "limit (benchmarks/defaults.py: 102.8M cases, the catalogue; ~3 min)")
    parser.add_argument("--no-torch", action="store_true", help="skip torch (not installed)")
    parser.add_argument("--torch-conv-exhaustive", action="store_true",
                        help="time torch's exhaustive gradcheck of the conv at batch 1 (minutes, ~10 GB)")
    args = parser.parse_args(argv)
    if args.one:
        return one(args.one)

    header = machine()
    print(header, file=sys.stderr)
    m = {}
    names = [n for n in MEASUREMENTS if "vgg" not in n and n != "torch-exh-conv-b1"
             and n not in defaults.measurements(ours_check)]
    if args.torch_conv_exhaustive:
        names.append("torch-exh-conv-b1")
    if args.no_torch:
        names = [n for n in names if not n.startswith("torch")]
    if args.vgg:
        names += ["ours-fwdbwd-vgg", "ours-vgg-directional"] + ([] if args.no_torch else ["torch-fast-vgg"])
        names += list(defaults.measurements(ours_check))
    for name in names:
        m[name] = measure(name)

    rows = []
    for key, title, n in (("fc", "FC 800->500, batch 16, every coordinate of x, W, b", 413_300),
                          ("conv", "Conv 32x32x3 -> ten 5x5, pad 2, batch 16, every coordinate of x, k, b",
                           49_912)):
        ours = m[f"ours-{key}-complex"]
        base = ours["seconds"]
        rows.append((title, "", "", "", ""))
        for method in ("complex", "central"):
            o = m[f"ours-{key}-{method}"]
            rows.append((f"ours, exhaustive, {method} step" if method == "complex" else
                         f"ours, exhaustive, {method} differences",
                         f"{o['seconds']:.3g} s", f"{o['seconds'] / base:.2g}x", gib(o["peak_added"]),
                         f"measured; {o['per_coordinate']:.4f} forwards per coordinate"))
        if not args.no_torch:
            if key == "fc":
                small, large = m["torch-exh-fc-b"], m["torch-exh-fc-x"]
                t = projected_exhaustive(small, large, n)
                how = (f"projected from {small['checked']} and {large['checked']} coordinates "
                       f"({small['seconds']:.3g} s, {large['seconds']:.3g} s)")
                mem = gib(large["peak_added"]) + f" at {large['checked']} coordinates"
            elif "torch-exh-conv-b1" in m:
                one_sample = m["torch-exh-conv-b1"]
                t = 16 * one_sample["seconds"]  # at least linear in the batch (inputs and outputs both grow)
                how = (f"projected lower bound: 16 x batch 1 ({one_sample['seconds']:.3g} s, every "
                       f"coordinate of x[:1], k, b)")
                mem = gib(one_sample["peak_added"]) + " at batch 1"
            else:
                t, how, mem = None, "not run (--torch-conv-exhaustive: minutes at batch 1 alone)", ""
            if t is not None:
                rows.append(("torch.autograd.gradcheck, fast_mode=False", f"{t:.3g} s", f"{t / base:.0f}x",
                             mem, how))
            else:
                rows.append(("torch.autograd.gradcheck, fast_mode=False", "", "", mem, how))
            f = m[f"torch-fast-{key}"]
            rows.append(("torch.autograd.gradcheck, fast_mode=True (random projections, not exhaustive)",
                         f"{f['seconds']:.3g} s", f"{f['seconds'] / base:.2g}x", gib(f["peak_added"]),
                         "measured"))
        loop = m[f"loop-{key}"]
        rows.append(("NumPy loop, one coordinate per forward pair (cs231n)", f"{loop['seconds']:.3g} s",
                     f"{loop['seconds'] / base:.0f}x", gib(loop["peak_added"]),
                     f"projected from {loop['timed']} coordinates ({loop['measured_seconds']:.3g} s)"))
        of = m[f"ours-fwdbwd-{key}"]
        line = f"ours {of['seconds'] * 1e3:.3g} ms"
        if not args.no_torch:
            tf = m[f"torch-fwdbwd-{key}"]
            line += f", torch {tf['seconds'] * 1e3:.3g} ms: {of['seconds'] / tf['seconds']:.2f}x torch"
        rows.append(("layer forward + backward (float64, best of 20)", line, "", "", "measured"))
    if args.vgg:
        d, fb = m["ours-vgg-directional"], m["ours-fwdbwd-vgg"]
        array_bytes = (16 * 25088 + 25088 * 4096 + 4096) * 8  # x, W, b in float64
        rows.append(("FC 7x7x512 -> 4096 (102.8M weights), batch 16, one random direction spanning x, W, b",
                     "", "", "", ""))
        rows.append((f"ours, directional ({d['method']}, the default at this size)", f"{d['seconds']:.3g} s",
                     f"{d['seconds'] / fb['seconds']:.2f}x our fwd+bwd",
                     f"{gib(d['peak'])} process peak = {d['peak'] / array_bytes:.2f}x the layer's arrays",
                     f"measured; {d['forwards']} forwards (the analytic one, then the joint pair)"))
        rows.append(("ours, one forward + backward", f"{fb['seconds']:.3g} s", "1x",
                     f"{gib(fb['peak'])} process peak = {fb['peak'] / array_bytes:.2f}x the layer's arrays",
                     "measured"))
        if "torch-fast-vgg" in m:
            f = m["torch-fast-vgg"]
            rows.append(("torch.autograd.gradcheck, fast_mode=True", f"{f['seconds']:.3g} s",
                         f"{f['seconds'] / fb['seconds']:.2f}x our fwd+bwd", gib(f["peak"]), "measured"))
        rows += defaults.rows(m, gib, array_bytes)

    table = ["| what | time | ratio | peak memory (RSS above the bare interpreter) | how |",
             "|---|---|---|---|---|"]
    for r in rows:
        cells = [f"**{c}**" if i == 0 and not any(r[1:]) else c for i, c in enumerate(r)]
        table.append("| " + " | ".join(cells) + " |")
    text = f"Machine: {header}\n\n" + "\n".join(table) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

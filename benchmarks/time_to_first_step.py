"""Time to first step: how long `dlskills train` takes from process start to its first optimizer
step, against two baselines measured in the same run (issue 16: the target is torch's import time
+ 1 s; scikit-learn and matplotlib must not be imported before that step):

    import torch      ``python -c "import torch"``
    torch step        the smallest torch program with an optimizer step: import torch, build
                      ``torch.optim.AdamW`` over one tensor, one backward, one step. Building any
                      torch optimizer imports ``torch._dynamo`` (``Optimizer.__init__`` is wrapped
                      by ``torch._disable_dynamo``, which imports it on first call): a cost of
                      torch 2.x that every training script pays, ≈ 1.5–3 s on 2 cores.

Each probe is a fresh interpreter started by this script; the clock runs from just before the
process is started to the moment the probe reports (the baselines: their last line; dlskills:
torch's global optimizer step pre-hook, which fires before the first ``optimizer.step()`` of any
optimizer), so no probe counts the interpreter's exit. The dlskills probe also reports which of
the heavy optional packages were in ``sys.modules`` at that moment.

    python benchmarks/time_to_first_step.py [--rounds 5] [-- extra `dlskills train` options]

Wall times on a shared machine move with its load: compare the two medians of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HEAVY_MODULES = ("sklearn", "matplotlib", "scipy", "pandas", "rich")

# runs `dlskills train` in this interpreter and exits at its first optimizer step, printing
# the wall clock then and the heavy modules loaded by then
_PROBE = """
import json, os, sys, time
from torch.optim.optimizer import register_optimizer_step_pre_hook

def _first_step(optimizer, args, kwargs):
    loaded = [name for name in {heavy!r} if name in sys.modules]
    print(json.dumps({{"time": time.time(), "loaded": loaded}}), flush=True)
    os._exit(0)

register_optimizer_step_pre_hook(_first_step)
from dlskills.cli import main
main({argv!r})
raise SystemExit("the run finished without an optimizer step")
"""


def first_step(train_args: list[str]) -> dict:
    """Seconds from process start to the first optimizer step of ``dlskills train train_args``
    and the heavy modules loaded by then: ``{"seconds": float, "loaded": [names]}``. The probe
    imports torch.optim before the CLI does, which changes the order, not the total."""
    with tempfile.TemporaryDirectory() as folder:
        argv = ["train", "--out", os.path.join(folder, "run"), *train_args]
        code = _PROBE.format(heavy=HEAVY_MODULES, argv=argv)
        start = time.time()
        completed = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=folder
        )
    if completed.returncode != 0 or not completed.stdout.strip():
        raise RuntimeError(f"the probe failed ({completed.returncode}): {completed.stderr[-2000:]}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"seconds": report["time"] - start, "loaded": report["loaded"]}


_REPORT_TIME = "import os, time\nprint(time.time(), flush=True)\nos._exit(0)\n"
BASELINES = {
    "import torch": "import torch\n" + _REPORT_TIME,
    "torch step": (
        "import torch\n"
        "weight = torch.zeros(3, requires_grad=True)\n"
        "optimizer = torch.optim.AdamW([weight])\n"
        "weight.sum().backward()\n" + _REPORT_TIME
    ),
}


def baseline_seconds(code: str) -> float:
    """Seconds from starting a fresh interpreter on ``code`` to its reported time."""
    start = time.time()
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(completed.stdout) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="probes of each kind (median)")
    parser.add_argument("train_args", nargs="*", help="extra `dlskills train` options")
    args = parser.parse_args()
    baselines: dict[str, list[float]] = {name: [] for name in BASELINES}
    probes = []
    for round_index in range(args.rounds):  # interleaved: load changes hit all alike
        for name, code in BASELINES.items():
            baselines[name].append(baseline_seconds(code))
        probes.append(first_step(args.train_args))
        times = ", ".join(f"{name} {values[-1]:.2f} s" for name, values in baselines.items())
        print(
            f"round {round_index + 1}/{args.rounds}: {times}, dlskills first step "
            f"{probes[-1]['seconds']:.2f} s",
            flush=True,
        )
    step_s = statistics.median(p["seconds"] for p in probes)
    print(f"medians of {args.rounds} rounds:")
    print(f"  dlskills train, first step   {step_s:6.2f} s")
    for name, values in baselines.items():
        seconds = statistics.median(values)
        print(
            f"  {name:<27}  {seconds:6.2f} s   dlskills − this {step_s - seconds:+.2f} s, "
            f"ratio {step_s / seconds:.2f}"
        )
    loaded = sorted({name for p in probes for name in p["loaded"]})
    print(f"heavy modules loaded by the first step: {', '.join(loaded) or 'none'}")


if __name__ == "__main__":
    main()

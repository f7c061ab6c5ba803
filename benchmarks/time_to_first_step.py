"""Time to first step: how long `dlskills train` takes from process start to its first optimizer
step, against two baselines measured in the same run (issue 16: the target is torch's import time
+ 1 s; scikit-learn and matplotlib must not be imported before that step):

    import torch      ``python -c "import torch"``
    torch step        the smallest torch program with an optimizer step: import torch, build
                      ``torch.optim.AdamW`` over one tensor, one backward. Building any torch
                      optimizer imports ``torch._dynamo``: ``Optimizer.add_param_group`` is wrapped
                      by ``torch._disable_dynamo``, which imports it on first call, and
                      ``Optimizer.step`` imports it again for its graph breaks. That import
                      (sympy, torch.fx's symbolic shapes, torch.distributed.fsdp, ...) takes
                      ≈ 0.9 s of the 1 s budget on an idle core; every torch training script pays
                      it, so "torch step" is the floor of any program that reaches a step.

What dlskills adds over that floor (≈ 0.2 s on an idle core, measured 2026-12): importing its
own train/ and model modules, discovering the registries to check the config's names before the
run folder is written, reading and splitting the digits file, and the checkpoint written before
the first step (the NaN guard's rollback target; safetensors). ``dlskills train`` imports no
package beyond what "torch step" imports except dlskills itself and safetensors
(tests/test_cli_train_startup.py checks it).

Each probe is a fresh interpreter started by this script; the clock runs from just before the
process is started to the moment the probe reports (the baselines: their last line; dlskills:
torch's global optimizer step pre-hook, which fires before the first ``optimizer.step()`` of any
optimizer), so no probe counts the interpreter's exit. Each probe also reports the modules
loaded at that moment.

    python benchmarks/time_to_first_step.py [--rounds 5] [-- extra `dlskills train` options]

Wall times on a shared machine move with its load: compare the medians of one run.
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

# prints the wall clock and the modules loaded, then exits without the interpreter's clean-up
_REPORT = (
    "import json, os, sys, time\n"
    "def _report():\n"
    "    modules = sorted(sys.modules)\n"
    '    print(json.dumps({"time": time.time(), "modules": modules}), flush=True)\n'
    "    os._exit(0)\n"
)

# runs `dlskills train` in this interpreter and reports at its first optimizer step
_PROBE = (
    _REPORT
    + """
from torch.optim.optimizer import register_optimizer_step_pre_hook

def _first_step(optimizer, args, kwargs):
    _report()

register_optimizer_step_pre_hook(_first_step)
from dlskills.cli import main
main(ARGV)
raise SystemExit("the run finished without an optimizer step")
"""
)


def _probe(code: str, cwd: str | None = None) -> dict:
    """Run ``code`` (which ends in ``_report()``) in a fresh interpreter: ``{"seconds": from just
    before the start to the report, "modules": names in sys.modules then}``."""
    start = time.time()
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd
    )
    if completed.returncode != 0 or not completed.stdout.strip():
        raise RuntimeError(f"the probe failed ({completed.returncode}): {completed.stderr[-2000:]}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"seconds": report["time"] - start, "modules": report["modules"]}


def first_step(train_args: list[str]) -> dict:
    """Seconds from process start to the first optimizer step of ``dlskills train train_args``,
    the modules loaded by then and the heavy ones among them: ``{"seconds": float, "modules":
    [names], "loaded": [names]}``. The probe imports torch.optim before the CLI does, which
    changes the order, not the total."""
    with tempfile.TemporaryDirectory() as folder:
        argv = ["train", "--out", os.path.join(folder, "run"), *train_args]
        report = _probe(_PROBE.replace("ARGV", repr(argv)), cwd=folder)
    report["loaded"] = [name for name in HEAVY_MODULES if name in report["modules"]]
    return report


BASELINES = {
    "import torch": _REPORT + "import torch\n_report()\n",
    "torch step": (
        _REPORT + "import torch\n"
        "weight = torch.zeros(3, requires_grad=True)\n"
        "optimizer = torch.optim.AdamW([weight])\n"
        "weight.sum().backward()\n"
        "_report()\n"
    ),
}


def baseline(name: str) -> dict:
    """The baseline ``name`` of BASELINES: ``{"seconds": float, "modules": [names]}``."""
    return _probe(BASELINES[name])


TARGET_S = 1.0  # issue 16: the first step within torch's import time + 1 s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="probes of each kind (median)")
    parser.add_argument("train_args", nargs="*", help="extra `dlskills train` options")
    args = parser.parse_args()
    baselines: dict[str, list[float]] = {name: [] for name in BASELINES}
    probes = []
    for round_index in range(args.rounds):  # interleaved: load changes hit all alike
        for name in BASELINES:
            baselines[name].append(baseline(name)["seconds"])
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
    over = step_s - statistics.median(baselines["import torch"])
    floor = statistics.median(baselines["torch step"]) - statistics.median(
        baselines["import torch"]
    )
    verdict = "met" if over <= TARGET_S else "not met"
    print(
        f"target (import torch + {TARGET_S:g} s): {verdict}, {over:+.2f} s; of it torch's own "
        f"optimizer (torch._dynamo import) {floor:+.2f} s, dlskills {over - floor:+.2f} s"
    )
    loaded = sorted({name for p in probes for name in p["loaded"]})
    print(f"heavy modules loaded by the first step: {', '.join(loaded) or 'none'}")


if __name__ == "__main__":
    main()

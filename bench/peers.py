#!/usr/bin/env python3
"""The peers' side of `bench/bench.py --peers PYTHON`: run with an interpreter that has torchvision
and any of torchinfo, fvcore, ptflops and thop. Prints JSON:
{tool: {model: {"in_process": seconds, "cold": seconds}}}.

In-process: the tool's own analysis of an already built model (construction left out, which
favours the peers); cold: a fresh process that imports torch, builds the model and runs the
tool — what a user waits for. FlopCounterMode runs on the meta device (nothing allocated).
Tools that are not installed are left out. Not part of archcalc; only the bench runs it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from typing import Any

RUNNERS = {
    "torchinfo": "import torchinfo; torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0)",
    "fvcore": ("from fvcore.nn import FlopCountAnalysis; a = FlopCountAnalysis(model, torch.zeros(1, 3, 224, 224))\n"
               "a.unsupported_ops_warnings(False); a.uncalled_modules_warnings(False); a.total()"),
    "ptflops": ("from ptflops import get_model_complexity_info; "
                "get_model_complexity_info(model, (3, 224, 224), as_strings=False, print_per_layer_stat=False)"),
    "thop": "import thop; thop.profile(model, inputs=(torch.zeros(1, 3, 224, 224),), verbose=False)",
    "FlopCounterMode (meta)": ("from torch.utils.flop_counter import FlopCounterMode\n"
                               "m = model.to('meta'); x = torch.zeros(1, 3, 224, 224, device='meta')\n"
                               "with FlopCounterMode(display=False) as c, torch.no_grad():\n"
                               "    m(x)\n"
                               "c.get_total_flops()"),
}
MODULES = {"torchinfo": "torchinfo", "fvcore": "fvcore", "ptflops": "ptflops", "thop": "thop",
           "FlopCounterMode (meta)": "torch"}


def median(fn: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def prelude(model: str) -> str:
    return f"import torch, torchvision\nmodel = torchvision.models.{model}(weights=None).eval()\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for tool, code in RUNNERS.items():
        if importlib.util.find_spec(MODULES[tool]) is None:
            continue
        results[tool] = {}
        for model in args.models:
            namespace: dict[str, Any] = {}
            exec(prelude(model), namespace)  # noqa: S102 - the bench's own fixed code
            in_process = median(lambda c=code, n=namespace: exec(c, dict(n)), args.runs)  # noqa: S102
            command = [sys.executable, "-W", "ignore", "-c", prelude(model) + code]
            cold = median(lambda c=command: subprocess.run(c, check=True, capture_output=True), max(1, args.runs // 2))
            results[tool][model] = {"in_process": in_process, "cold": cold}
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()

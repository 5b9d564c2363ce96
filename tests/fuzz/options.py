"""Command lines for every command that reads a spec, with good or hostile option values.

`command_line(rng, command, hostile)` returns the arguments after `archcalc` (with
`{spec}` where the spec goes) and whether an odd value was put in. With `hostile`
false every value comes from the GOOD pools, values that are right on their own, so
an error can only come from the spec text (the case's blame is "spec"). With `hostile`
true one or two options get a value from the BAD pools: zero, negative, 10¹², 5,000
digits, Unicode digits, text with newlines and parentheses, paths in missing folders.
`--input` and `--set` change what the spec means, so they appear only in hostile lines.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tests.fuzz.cases import SPEC

SPEC_COMMANDS = ("report", "check", "rf", "render", "compare", "export", "verify")
ALL_COMMANDS = (*SPEC_COMMANDS, "calc")
DEFAULT_COMMANDS = ("report", "check", "rf", "render", "compare", "export", "calc")

BIG = ("1000000000000", "1" + "0" * 100, "9" * 5000)
ODD_NUMBERS = ("0", "-1", *BIG, "1.5", "1e3", "²", "①", "٣", "", " ", "nan", "inf", "0x10", "1_0", "３", "\udcff")
# (an argument holding invalid UTF-8 reaches Python as a lone surrogate: "\udcff" is byte 0xff)
GOOD_COLUMNS = ("shape,params", "type,shape,params,macs", "all", "shape,params,flops,rf,act_bytes",
                "shape,params,buffers,macs,connections", "shape,params,connections,fc-equivalent,sharing",
                "rf,jump,start,aligned", "param_bytes,other,share")
BAD_COLUMNS = ("nope", "", ",", "all,all", "shape,,params", "rf,rf", "ünï", "shape\nparams", "SHAPE", "all,nope")
BAD_INPUTS = ("0x3", "-1", "3x100000x100000", "1x10000000", "3x", "x", "²", "①x3", "٣x32x32", *BIG,
              "3x32x32x32x32", "(3, 32, 32)", "3×32×32", "3x32\nx32", "", " ", "1e3", "3.0x32x32", "1x1",
              "3x1000000000000x1000000000000", "{3}", "3x32x32)", "3 x 32 x 32", "1", "3x\udcff")
BAD_SETS = ("k=256", "k=10**400", "k=(10.0**64)**64", "k=0**-1", "k=" + "1+" * 10_000 + "1", "nope=1", "=5", "k",
            "k=\nrelu", "k=2input", "k=(-1)**0.5", "k=10**64", "k=" + "-(" * 300 + "1" + ")" * 300, "k=1/0",
            "k=1.5", "k=-1", "k=0", "k=" + "9" * 5000, "vocab=²", "k=10**64*10**64*10**64", "k=\udcff",
            "k=((10**64)**64)**2", "\udcff=1")
CONVENTIONS = ("pytorch", "paper", "torchinfo", "fvcore", "ptflops", "ptflops-aten", "thop", "tf-profiler")
NAMED_INPUTS = ("left=1x64x64", "right=1x64x64", "nope=3x8x8", "=3x8x8", "left=", "left=0x3", "input=3x32x32",
                "left=²", "left=3x8x8=3", "tokens=16", "ids=" + "9" * 5000, "left = 1x64x64")
BAD_CHECKPOINTS = ("0", "1", "-1", "1000000000000", "9" * 5000, "1.5", "²", "", "all", "٣")
BAD_PATHS = ("missing/dir/out", ".", "out.txt", "", "dir/", "/dev/full", "out\nname", "a" * 300, "\udcff.svg")


def command_line(rng: random.Random, command: str, hostile: bool) -> tuple[list[str], str]:
    """The arguments for `command`, and a label naming the odd option ('' when none)."""
    builder = _BUILDERS[command]
    args, odd = builder(rng, hostile)
    return args, odd


def _pick(rng: random.Random, hostile: bool, good: tuple[str, ...], bad: tuple[str, ...]) -> str:
    return rng.choice(bad if hostile else good)


def _report(rng: random.Random, hostile: bool) -> tuple[list[str], str]:
    fmt = rng.choices(["table", "json", "csv", "markdown"], [4, 3, 2, 2])[0]
    args = ["report", SPEC, "--format", fmt]
    if fmt != "csv" and rng.random() < 0.2:
        args.append("--explain")
    if fmt in ("table", "markdown") and rng.random() < 0.3:
        args += ["--columns", rng.choice(GOOD_COLUMNS)]
    if rng.random() < 0.2:
        args += ["--depth", rng.choice(["0", "1", "2", "5"])]
    if rng.random() < 0.15:
        args += ["--dtype", rng.choice(["float32", "float16", "bfloat16", "int8"]),
                 "--batch", rng.choice(["1", "8", "32"]), "--optimizer", rng.choice(["sgd", "momentum", "adam"])]
    if rng.random() < 0.1:
        args += ["--convention", rng.choice(CONVENTIONS)]
    if rng.random() < 0.1:
        args += ["--training", "--precision", rng.choice(["fp32", "fp16", "bf16"]),
                 "--device", rng.choice(["cpu", "cuda"])]
        if rng.random() < 0.5:
            args += ["--checkpoint", rng.choice(["2", "4", "sqrt"])]
    if not hostile:
        return args, ""
    option = rng.choice(["--columns", "--depth", "--batch", "--dtype", "--set", "--input", "--explain-csv",
                         "--format", "--input", "--set", "--checkpoint", "--convention", "--named-input"])
    return _odd_report_option(rng, args, option), option


def _odd_report_option(rng: random.Random, args: list[str], option: str) -> list[str]:
    values = {
        "--columns": BAD_COLUMNS, "--depth": ("-1", "1000000000000", "9" * 5000, "1.5", "²", "٣"),
        "--batch": ("0", "-1", "10000000", "1000000000000", "9" * 40, "1e3", "٣"),
        "--dtype": ("float64", "", "FLOAT32"), "--set": BAD_SETS, "--input": BAD_INPUTS,
        "--format": ("xml", ""), "--convention": ("nope", "", "PyTorch", "torchinfo,fvcore"),
    }
    if option == "--explain-csv":
        return [*_without(args, "--format"), "--format", "csv", "--explain"]
    if option == "--named-input":
        return [*args, "--input", rng.choice(NAMED_INPUTS), *(["--input", rng.choice(NAMED_INPUTS)]
                                                            if rng.random() < 0.5 else [])]
    if option == "--checkpoint":
        return [*args, "--training", "--checkpoint", rng.choice(BAD_CHECKPOINTS)]
    extra = [option, rng.choice(values[option])]
    if option == "--batch" and rng.random() < 0.5:
        extra += ["--dtype", "float32"]
    return [*args, *extra]


def _without(args: list[str], option: str) -> list[str]:
    if option not in args:
        return list(args)
    i = args.index(option)
    return args[:i] + args[i + 2 :]


def _check(rng: random.Random, hostile: bool) -> tuple[list[str], str]:
    args = ["check", SPEC, "--format", rng.choice(["table", "json"])]
    if rng.random() < 0.1:
        args += ["--convention", rng.choice(CONVENTIONS)]
    if hostile and rng.random() < 0.2:
        return [*args, "--input", rng.choice(NAMED_INPUTS)], "--input"
    if hostile:
        return [*args, "--input", rng.choice(BAD_INPUTS)], "--input"
    return args, ""


def _rf(rng: random.Random, hostile: bool) -> tuple[list[str], str]:
    args = ["rf", SPEC, "--format", rng.choice(["table", "json"])]
    if rng.random() < 0.3:
        args += ["-o", rng.choice(["rf.svg", "plot.svg"])]
    if not hostile:
        return args, ""
    option = rng.choice(["-o", "-o", "--layer", "--input"])
    if option == "-o":
        return [*_without(args, "-o"), "-o", rng.choice([*BAD_PATHS, "missing/rf.svg", "rf.png", "x.svg/"])], "-o"
    if option == "--layer":
        value = rng.choice(["0", "1", "-1", "999999", "²", "①", "٣", "1" + "0" * 5000, "in put", "", "n0", "stem"])
        return [*args, "--layer", value], "--layer"
    return [*args, "--input", rng.choice(BAD_INPUTS)], "--input"


def _render(rng: random.Random, hostile: bool) -> tuple[list[str], str]:
    args = ["render", SPEC, "-o", "out.dot", "--rankdir", rng.choice(["TB", "LR"])]
    if rng.random() < 0.3:
        args += ["--depth", rng.choice(["0", "1", "3"])]
    if not hostile:
        return args, ""
    option = rng.choice(["-o", "-o", "--depth", "--input"])
    if option == "-o":
        return [*_without(args, "-o"), "-o", rng.choice(["missing/dir/out.dot", ".dot", "out.DOT", "dir.dot/",
                                                           "/dev/full", "a" * 300 + ".dot"])], "-o"
    if option == "--depth":
        return [*_without(args, "--depth"), "--depth", rng.choice(["-1", "9" * 5000, "1e3"])], "--depth"
    return [*args, "--input", rng.choice(BAD_INPUTS)], "--input"


def _compare(rng: random.Random, hostile: bool) -> tuple[list[str], str]:
    others = rng.sample(["lenet5", "alexnet", "vgg11", "lstm-lm", "textcnn", "resnet18"], rng.randint(0, 2))
    args = ["compare", SPEC, *others, "--format", rng.choice(["table", "markdown", "json"])]
    if rng.random() < 0.15:
        args += ["--convention", rng.choice(CONVENTIONS)]
    if not hostile:
        return args, ""
    option = rng.choice(["--input", "spec", "spec", "--convention"])
    if option == "--convention":
        return [*args, "--convention", rng.choice(["nope", "", "THOP", "9" * 5000])], "--convention"
    if option == "--input":
        return [*args, "--input", rng.choice(BAD_INPUTS)], "--input"
    extra = rng.choice(["-", "nonexistent", ".", "vgg", "specs", "/dev/null", ""])
    return [*args[:2], extra, *args[2:]], "compare-spec"


def _export(rng: random.Random, hostile: bool) -> tuple[list[str], str]:
    args = ["export", SPEC, "--torch"]
    if rng.random() < 0.3:
        args += ["-o", "model.py"]
    if not hostile:
        return args, ""
    option = rng.choice(["-o", "-o", "--input"])
    if option == "-o":
        return [*_without(args, "-o"), "-o", rng.choice([*BAD_PATHS, "missing/model.py"])], "-o"
    return [*args, "--input", rng.choice(BAD_INPUTS)], "--input"


def _verify(rng: random.Random, hostile: bool) -> tuple[list[str], str]:
    args = ["verify", SPEC, "--device", "cpu", "--runs", "0", "--warmup", "0", "--format", rng.choice(["table",
                                                                                                       "json"])]
    if not hostile:
        return args, ""
    option = rng.choice(["--input", "--batch", "--dtype"])
    value = {"--input": ("3x100000x100000", "1x10000000", "3x4096x4096", *BAD_INPUTS[:6]),
             "--batch": ("10000000", "100000", "0", "1000000000000"), "--dtype": ("float16", "bfloat16", "int8")}
    return [*args, option, rng.choice(value[option])], option


def _calc(rng: random.Random, hostile: bool) -> tuple[list[str], str]:
    """`calc conv|pool|fc`: every value is an option, so these lines are always hostile-capable."""
    kind = rng.choice(["conv", "conv", "pool", "fc"])
    if kind == "fc":
        values = {"--in": rng.choice(["9216", "25088", "1"]), "--out": rng.choice(["4096", "10"])}
        flags = ["--no-bias"] if rng.random() < 0.3 else []
    else:
        values = {"--input": rng.choice(["227", "3x227x227", "55", "96x55x55", "56x56", "32x56x56"]),
                  "--kernel": rng.choice(["3", "11", "1x7", "2"]), "--stride": rng.choice(["1", "2", "4"]),
                  "--padding": rng.choice(["0", "1", "2"])}
        flags = []
        if kind == "conv":
            values |= {"--out-channels": rng.choice(["96", "64", "32"]), "--dilation": rng.choice(["1", "2"])}
            if values["--input"].count("x") != 2:
                values["--in-channels"] = rng.choice(["3", "32"])
            flags = ["--no-bias"] if rng.random() < 0.3 else []
        else:
            values["--padding"] = "0"
            flags = rng.choice([[], ["--ceil"], ["--type", "avg"]])
    odd = ""
    if hostile:
        odd = rng.choice(sorted(values))
        values[odd] = rng.choice(_CALC_BAD)
    args = ["calc", kind, *(w for k, v in values.items() for w in (k, v)), *flags,
            "--format", rng.choice(["text", "json"])]
    return args, odd


_CALC_BAD = (*ODD_NUMBERS, "3)\nrelu\nconv(k=1, c=4", "3, s=2", "3/s2", "{2*3}", "3x", "x3", "(3)", "3x3x3x3",
             "3), relu, conv(k=1, c=4", "3\nfc-10", "3 # comment", "3;4", "1x7x", "3=3", "2**10", "-3")

_BUILDERS: dict[str, Callable[[random.Random, bool], tuple[list[str], str]]] = {
    "report": _report, "check": _check, "rf": _rf, "render": _render, "compare": _compare, "export": _export,
    "verify": _verify, "calc": _calc,
}

CALC_SIZE_OPTIONS = ("--input", "--kernel", "--stride", "--padding", "--dilation")

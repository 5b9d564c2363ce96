"""`python -m tests.fuzz`: run a seeded batch, rerun one case, or merge batch reports.

    python -m tests.fuzz --seed 1 --count 5000 --out fuzz-1.json
    python -m tests.fuzz --seed 1 --commands report,check --timeout 2 --memory-mb 512
    python -m tests.fuzz --seed 1 --case 1234            # one case: its record and a bash line
    python -m tests.fuzz --merge fuzz-*.json --out all.json
    python -m tests.fuzz --reminimize all.json --min-seconds 120 --out all-min.json
    python -m tests.fuzz --issue                         # the inputs the earlier round reported
"""

from __future__ import annotations

import argparse
import json
import sys

from tests.fuzz import log, run_batch
from tests.fuzz.options import ALL_COMMANDS, DEFAULT_COMMANDS


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--count", type=int, default=1000, help="inputs to run (default 1000)")
    p.add_argument("--start", type=int, default=0, help="index of the first input (for batches)")
    p.add_argument("--commands", default=",".join(DEFAULT_COMMANDS),
                   help=f"comma-separated, of {', '.join(ALL_COMMANDS)} (default: all but verify)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds per input (default 2)")
    p.add_argument("--memory-mb", type=int, default=512, help="memory one input may add (default 512)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--out", default=None, help="write the JSON report here")
    p.add_argument("--no-minimize", action="store_true", help="report the smallest case seen, unshrunk")
    p.add_argument("--min-probes", type=int, default=300, help="probes per failure when minimising")
    p.add_argument("--min-seconds", type=float, default=60.0, help="seconds per failure when minimising")
    p.add_argument("--min-total", type=float, default=900.0, help="seconds for all minimisation")
    p.add_argument("--profile", choices=["full", "quick"], default="full",
                   help="the input mix: full (long runs) or quick (tests/test_fuzz.py)")
    p.add_argument("--refresh-zoo", action="store_true", help="rewrite tests/fuzz/zoo.json (draw weights)")
    p.add_argument("--issue", action="store_true",
                   help="run the inputs the earlier round reported (issue_cases.py) and show what each gives")
    p.add_argument("--with-issue", action="store_true", help="add those inputs to the batch")
    p.add_argument("--case", type=int, default=None, help="run only this input and print its record")
    p.add_argument("--merge", nargs="+", default=None, metavar="REPORT", help="merge batch reports into --out")
    p.add_argument("--reminimize", default=None, metavar="REPORT",
                   help="shrink a report's failures again (with the --min-* budgets) into --out")
    return p.parse_args(argv)


def commands_of(text: str) -> tuple[str, ...]:
    names = tuple(c.strip() for c in text.split(",") if c.strip())
    unknown = [c for c in names if c not in ALL_COMMANDS]
    if unknown or not names:
        raise SystemExit(f"unknown commands {unknown}: use {', '.join(ALL_COMMANDS)}")
    return names


def one_case(args: argparse.Namespace, commands: tuple[str, ...]) -> int:
    from tests.fuzz.cases import shell
    from tests.fuzz.inputs import make_case
    from tests.fuzz.runner import Pool

    case = make_case(args.seed, args.case, commands, args.profile)
    settings = {"timeout": args.timeout, "memory_mb": args.memory_mb, "commands": list(commands)}
    with Pool(1, settings) as pool:
        rec = pool.probe(case)
    print(json.dumps({"case": case.to_json(), "record": rec}, indent=1, ensure_ascii=False))
    print(shell(case))
    return 0


def issue(args: argparse.Namespace) -> int:
    """Each reported input with its class and signature today."""
    from tests.fuzz import issue_cases
    from tests.fuzz.cases import compact, shell
    from tests.fuzz.runner import Pool

    settings = {"timeout": args.timeout, "memory_mb": args.memory_mb, "commands": list(ALL_COMMANDS)}
    rows = []
    with Pool(1, settings) as pool:
        for case in issue_cases.cases():
            rec = pool.probe(case)
            rows.append({"label": issue_cases.label(case.id), "class": rec["kind"], "signature": rec["signature"],
                         "where": rec["where"], "message": rec["message"][:300], "shell": compact(shell(case), 300)})
            print(f"{rows[-1]['label'][:48]:48}  {rec['kind']:12}  {rec['signature'][:110]}", flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1, ensure_ascii=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    from tests.fuzz import report

    args = parse(sys.argv[1:] if argv is None else argv)
    if args.refresh_zoo:
        from tests.fuzz.corpus import refresh

        print(json.dumps(refresh(), indent=1))
        return 0
    if args.reminimize:
        from tests.fuzz import reminimize

        with open(args.reminimize, encoding="utf-8") as f:
            shrunk = reminimize(json.load(f), args.timeout, args.memory_mb, args.jobs, args.min_probes,
                                args.min_seconds, args.min_total, progress=log)
        if args.out:
            report.write(shrunk, args.out)
        print(report.summary(shrunk))
        return 0
    if args.merge:
        merged = report.merge([json.loads(open(p, encoding="utf-8").read()) for p in args.merge])
        if args.out:
            report.write(merged, args.out)
        print(report.summary(merged))
        return 0
    commands = commands_of(args.commands)
    if args.issue:
        return issue(args)
    if args.case is not None:
        return one_case(args, commands)
    result = run_batch(args.seed, args.count, commands, args.timeout, args.memory_mb, args.jobs, args.start,
                       not args.no_minimize, args.min_probes, args.min_seconds, args.min_total, args.profile,
                       _issue_cases() if args.with_issue else None, progress=log)
    result["command"] = "python -m tests.fuzz " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.out:
        report.write(result, args.out)
    print(report.summary(result))
    return 1 if result["failing_inputs"] else 0


def _issue_cases() -> list:  # type: ignore[type-arg]
    from tests.fuzz.issue_cases import cases

    return cases()


if __name__ == "__main__":
    raise SystemExit(main())

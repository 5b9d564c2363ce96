"""The worker process: runs cases in-process through click's CliRunner, under limits.

Why this design:

- **In-process, through `CliRunner`.** A fresh `archcalc` process costs ~300 ms of
  imports; in-process a small spec takes a few milliseconds, so thousands of inputs fit
  in a minute. `CliRunner` gives exactly what the user sees: exit status, stdout, stderr,
  and the exception a real run would print as a traceback. (A closed standard input
  cannot be faked in-process, so those few cases run as a real process.)
- **A separate process, not the fuzzer's own.** The memory cap is `RLIMIT_AS` (address
  space), which the kernel enforces in C code too (str(10**10**7), a 10 GB list), where
  `tracemalloc` would only report after the fact and slow every allocation. It is set
  at the address space the warmed-up worker already has (torch's libraries included)
  plus `--memory-mb`, so the cap counts what one input adds. Hitting it raises
  `MemoryError` (or makes torch report a failed allocation) and the worker goes on; a
  process is also cheap to throw away when a run leaves it in a bad state.
- **CPU time, not wall time.** The machine is shared (two cores, several developers, a load
  of 10 at times): a wall-clock limit would call a case slow because others ran. Every limit
  counts the worker's own CPU seconds (`ITIMER_PROF`, `time.process_time`), and the parent's
  watchdog reads the worker's CPU time from /proc, so a figure means the same on a busy
  machine and an idle one.
- **`SIGPROF` via `signal.setitimer(ITIMER_PROF)`, raising `Timeout` in the main thread.** `Timeout`
  is a `BaseException`, so no `except Exception` in archcalc, click or `CliRunner`
  swallows it. A signal handler runs only between bytecodes, so a regular expression or
  a big-integer operation in C can outlast it, and its exception then lands wherever
  Python runs next (usually just after the C call that took the time). For a case stuck in
  C code the parent (runner.py) kills the worker when its CPU time overruns the limit by
  `2 × GRACE` and reads the stack that `faulthandler.dump_traceback_later` (armed at
  `WALL_FACTOR` × the limit in wall time) or its own SIGABRT dump wrote.
- **The limit grows with what the spec describes.** A spec of 10,000 layers may take a few
  seconds without being a hang (the issue's bound: about a second per 10,000 layers); a
  case that passes `--timeout` is tried again with `--timeout` + `PER_LAYER` seconds per
  layer of its expanded graph (counted by `archcalc.load_text`, itself under the limit), so
  only time out of proportion to the network is a hang.
- Each case runs in a fresh temporary directory (files for `-o`, the spec file), with
  `RLIMIT_FSIZE` capping what it may write, and `warnings` recorded (a Python warning is
  something the user would see).

Protocol: one JSON case per line on stdin; per case the worker writes `{"limit": seconds}`
each time it starts a run with a new limit (the parent's watchdog follows it), then the
classified record, on the file descriptor that was stdout (C code writing to fd 1 lands
in stderr instead).
"""

from __future__ import annotations

import faulthandler
import io
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fuzz.cases import SPEC, Case
from tests.fuzz.classify import classify

GRACE = 2.0  # the parent kills a worker whose case overran its limit by 2 × GRACE seconds
LATE = 0.05  # seconds between faulthandler's dump at the limit and the Timeout that stops the run
BASELINE_CAP = 20.0  # seconds: the longest an unmutated zoo spec may take for its baseline
PER_LAYER = 8e-4  # CPU s per layer: 8 s per 10,000 (the issue asks ~1 s; report --explain measures 3-5 s)
SIZE_LIMIT = 10  # times --timeout: the CPU time counting a spec's layers may take (load_text, no passes)
PER_PARAM = 1e-7  # CPU seconds per parameter for export and verify, which build (and initialise) weights
WALL_FACTOR = 10.0  # the stack dump for a run stuck in C code: at this many times its limit in wall time
OUTPUT_CAP = 64 << 20  # bytes a case may write to one file
KEEP = 4000  # characters of stdout and stderr kept per run
CLI_MAIN = "import sys; from archcalc.cli import cli; cli(prog_name='archcalc')"


class Timeout(BaseException):
    """The run passed its limit (raised by SIGPROF in the main thread)."""


def _alarm(signum: int, frame: Any) -> None:
    raise Timeout()


class ZeroStream(io.RawIOBase):
    """An endless stream of NUL bytes: `< /dev/zero`."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        view[:] = bytes(len(view))
        return len(view)


class Worker:
    def __init__(self, timeout: float, memory_mb: int, commands: list[str], dump: str) -> None:
        from click.testing import CliRunner

        import archcalc
        from archcalc.cli import cli

        self.cli, self.runner = cli, CliRunner()
        self.package = str(Path(archcalc.__file__).resolve().parent) + os.sep
        self.timeout, self.memory_mb = timeout, memory_mb
        self.baselines: dict[tuple[str, ...], float] = {}
        self.home = os.getcwd()
        self.dump = open(dump, "w+")  # faulthandler writes the stack at each case's limit here
        self._warm_up(commands)
        self.base = _vm("VmSize")
        self._set_limits()

    # -- setup --------------------------------------------------------------------------

    def _warm_up(self, commands: list[str]) -> None:
        """Import what the commands import lazily, before the memory cap is measured."""
        text = "input 1x8x8\nconv3-4, maxpool, fc-2\n"
        lines = [["report", SPEC, "--format", f] for f in ("table", "json", "csv", "markdown")]
        lines += [["report", SPEC, "--explain"], ["check", SPEC], ["rf", SPEC, "-o", "rf.svg"],
                  ["render", SPEC, "-o", "out.dot"], ["compare", SPEC, "lenet5"],
                  ["calc", "conv", "--input", "8", "--kernel", "3", "--in-channels", "1", "--out-channels", "1"]]
        if "export" in commands:
            lines.append(["export", SPEC, "--torch"])
        if "verify" in commands:
            lines.append(["verify", SPEC, "--device", "cpu", "--runs", "0", "--warmup", "0"])
        for args in lines:
            self.execute(Case(-1, args, text), 600.0)
        if "export" in commands:  # export builds a big model on the meta device, whose imports take seconds
            import torch._dynamo  # noqa: F401

            self.execute(Case(-1, ["export", SPEC, "--torch"], "input 65536\nfc-1024, rbf-2, relu\n"), 600.0)

    def _set_limits(self) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = self.base + (self.memory_mb << 20)
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_CAP, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the cap: write() fails with EFBIG
        signal.signal(signal.SIGPROF, _alarm)
        faulthandler.enable(file=sys.stderr, all_threads=True)

    # -- one case -------------------------------------------------------------------------

    def run(self, case: Case, say_limit: Callable[[float], None]) -> dict[str, Any]:
        """Run and classify one case: the record the parent collects.

        The limit is `--timeout`. A mutation of a zoo spec that passes it gets another try
        with `--timeout` plus 3× what the unmutated spec takes with the same command: a
        mutation of DenseNet-201 may take as long as DenseNet-201 without being a hang.
        (Measured only then, so the rare slow case pays for it, not every case.)
        """
        limit = self.timeout
        say_limit(limit)
        outcome = self.execute(case, limit)
        if outcome["elapsed"] >= limit and case.via != "closed":
            layers, params = self._size(case)
            longer = self.timeout + PER_LAYER * layers + (PER_PARAM * params if case.args[0] in ("export", "verify")
                                                           else 0.0)
            if case.seed_spec:
                longer = max(longer, self.timeout + 3 * self._baseline(case))
            if longer > limit * 1.2:
                limit = longer
                say_limit(limit)
                outcome = self.execute(case, limit)
        outcome["near_cap"] = _vm("VmPeak") - self.base > (self.memory_mb << 20) * 0.9
        verdict = classify(case, outcome, lambda other: self.execute(other, limit))
        rec = record(case, outcome, verdict.kind, verdict.signature, verdict.detail)
        # VmPeak only grows: a worker whose peak passed half the cap is replaced, so that
        # `near_cap` keeps telling a real exhaustion from CPython's parser's MemoryError
        rec["bloated"] = _vm("VmPeak") - self.base > (self.memory_mb << 20) // 2
        return rec

    def _size(self, case: Case) -> tuple[int, int]:
        """The layers the case's spec expands to and its parameters (0, 0 if it does not load
        within the limit): export and verify build the weights of a model up to 50M parameters."""
        from archcalc import load_text
        from archcalc.tensor import prod

        if case.spec is None:
            return 0, 0
        signal.setitimer(signal.ITIMER_PROF, SIZE_LIMIT * self.timeout)  # 250,000 layers load in ~10 s
        try:
            graph = load_text(case.spec, "spec.arch")
            params = sum(prod(s) for n in graph for s in n.layer.param_shapes(n.args, n.in_shapes, n.shape).values())
            return len(graph), params
        except (Exception, Timeout):
            return 0, 0
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)

    def _baseline(self, case: Case) -> float:
        """Seconds the unmutated zoo spec takes with the case's command line (cached)."""
        key = (case.seed_spec or "", case.args[0], *_format_of(case.args), case.via)
        if key not in self.baselines:
            from tests.fuzz.corpus import read

            start = time.process_time()
            self.execute(case.with_spec(read(case.seed_spec or "")), BASELINE_CAP)
            self.baselines[key] = min(time.process_time() - start, BASELINE_CAP)
        return self.baselines[key]

    def execute(self, case: Case, limit: float) -> dict[str, Any]:
        """What the user would see: exit status, output, exception, time, warnings."""
        with tempfile.TemporaryDirectory(prefix="archfuzz-") as tmp:
            os.chdir(tmp)
            try:
                args, stdin = _materialize(case)
                if case.via == "closed":
                    outcome = self._process(args, limit)
                else:
                    outcome = self._invoke(args, stdin, limit)
                outcome["written"] = _written(case.args, outcome)
            finally:
                os.chdir(self.home)
        outcome["limit"] = limit if case.via != "closed" else limit + 5
        return outcome

    def _invoke(self, args: list[str], stdin: Any, limit: float) -> dict[str, Any]:
        self.dump.seek(0)
        self.dump.truncate()
        start = time.process_time()
        faulthandler.dump_traceback_later(limit * WALL_FACTOR, file=self.dump)
        signal.setitimer(signal.ITIMER_PROF, limit + LATE)
        result: Any = None
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = self.runner.invoke(self.cli, args, input=stdin, catch_exceptions=True)
                end = time.process_time()  # the run's own CPU time
        except Timeout as e:
            end, stopped = time.process_time(), {"event": "timeout", "frames": self.frames(e.__traceback__)}
        except MemoryError as e:
            end, stopped = time.process_time(), {"event": "memory", "frames": self.frames(e.__traceback__)}
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            faulthandler.cancel_dump_traceback_later()
        outcome = self._outcome(result, caught) if result is not None else stopped
        outcome["elapsed"] = end - start
        return outcome

    def _read_dump(self) -> str:
        """The dump faulthandler's thread wrote at the limit (it may still be writing it)."""
        for _ in range(10):
            self.dump.seek(0)
            text = self.dump.read()
            if "File " in text:
                return text
            time.sleep(0.01)
        return ""

    def _outcome(self, result: Any, caught: list[warnings.WarningMessage]) -> dict[str, Any]:
        exc = result.exception
        outcome: dict[str, Any] = {"event": "done", "exit": result.exit_code, "exception": None, "frames": [],
                                   "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}
        for name in ("stdout", "stderr"):
            outcome[name] = _safe_text(result, name)  # whole: classify reads it; the record keeps KEEP
        if exc is not None and not isinstance(exc, SystemExit):
            if isinstance(exc, MemoryError):
                outcome["event"] = "memory"
            outcome["exception"] = {"type": type(exc).__name__, "message": _safe_str(exc)[:500]}
            outcome["frames"] = self.frames(result.exc_info[2])
        return outcome

    def _process(self, args: list[str], limit: float) -> dict[str, Any]:
        """A real `archcalc` process with standard input closed (`<&-`); its time is its CPU time
        (a fresh process's imports take seconds of wall time on a busy machine)."""
        before = _children_cpu()
        try:
            proc = subprocess.run([sys.executable, "-c", CLI_MAIN, *args], capture_output=True, text=True,
                                  timeout=(limit + 5) * WALL_FACTOR, preexec_fn=lambda: os.close(0),
                                  errors="replace")
        except subprocess.TimeoutExpired:
            return {"event": "timeout", "frames": [], "elapsed": _children_cpu() - before}
        outcome = {"event": "done", "exit": proc.returncode, "stdout": proc.stdout,
                   "stderr": proc.stderr, "exception": None, "frames": [], "warnings": [],
                   "elapsed": _children_cpu() - before}
        if "Traceback (most recent call last)" in proc.stderr:
            outcome["frames"] = [self.frame(f, fn, int(n)) for f, n, fn in text_frames(proc.stderr)]
            last = proc.stderr.strip().splitlines()[-1]
            kind, _, message = last.partition(": ")
            outcome["exception"] = {"type": kind.rsplit(".", 1)[-1], "message": message}
            outcome["stderr"] = last
        return outcome

    # -- frames ---------------------------------------------------------------------------

    def frames(self, tb: Any) -> list[list[Any]]:
        """[file, function, line] from outermost to innermost; archcalc's as 'archcalc/...'."""
        summary = traceback.StackSummary.extract(traceback.walk_tb(tb), lookup_lines=False)
        return [self.frame(f.filename, f.name, f.lineno or 0) for f in summary][-400:]

    def frame(self, filename: str, function: str, line: int) -> list[Any]:
        path = str(Path(filename).resolve()) if filename.startswith("/") else filename
        if path.startswith(self.package):
            return ["archcalc/" + path[len(self.package):], function, line]
        return ["/".join(Path(filename).parts[-2:]), function, line]


_TEXT_FRAME = re.compile(r'^\s*File "(.+?)", line (\d+),? in (\S+)', re.M)


def text_frames(text: str) -> list[tuple[str, str, str]]:
    """(file, line, function) of a printed traceback or faulthandler dump, as printed."""
    return _TEXT_FRAME.findall(text)


def dump_frames(dump: str) -> list[tuple[str, str, str]]:
    """The main thread's frames in a faulthandler dump (the one running this worker),
    outermost first as in a traceback (faulthandler prints the most recent first)."""
    blocks = [b for b in re.split(r"\n(?=\S)", dump) if "File " in b]
    main = [b for b in blocks if "fuzz/worker.py" in b] or blocks
    return list(reversed(text_frames(main[0]))) if main else []


def record(case: Case, outcome: dict[str, Any], kind: str, signature: str, detail: dict[str, Any]) -> dict[str, Any]:
    from tests.fuzz.classify import where

    return {"id": case.id, "kind": kind, "signature": signature, "detail": detail, "exit": outcome.get("exit"),
            "elapsed": round(outcome.get("elapsed", 0.0), 4), "limit": outcome.get("limit"),
            "message": (outcome.get("stderr") or "")[:600], "where": where(outcome),
            "exception": outcome.get("exception")}


def _materialize(case: Case) -> tuple[list[str], Any]:
    """The files the case needs in the current directory, its arguments and its stdin."""
    spec_word = {"stdin": "-", "zeros": "-", "closed": "-", "file": "spec.arch", "dir": "spec.arch",
                 "arg": case.spec or ""}[case.via]
    if case.via == "file":
        Path("spec.arch").write_bytes(case.spec_bytes())
    elif case.via == "dir":
        os.mkdir("spec.arch")
    os.mkdir("dir")  # so `-o dir/` names an existing directory
    stdin: Any = case.spec_bytes() if case.via == "stdin" else b""
    if case.via == "zeros":
        stdin = io.BufferedReader(ZeroStream(), 1 << 16)
    return [spec_word if a == SPEC else a for a in case.args], stdin


def _written(args: list[str], outcome: dict[str, Any]) -> dict[str, bool]:
    """For rf/render/export with `-o FILE`: whether FILE exists now."""
    if args[0] not in ("rf", "render", "export") or "-o" not in args or outcome.get("exit") != 0:
        return {}
    path = args[args.index("-o") + 1] if args.index("-o") + 1 < len(args) else ""
    return {path: os.path.exists(path.rstrip("/"))} if path else {}  # `-o x.svg/` writes x.svg


def _format_of(args: list[str]) -> tuple[str, ...]:
    fmt = args[args.index("--format") + 1] if "--format" in args[:-1] else ""
    return (fmt, "--explain" if "--explain" in args else "")


def _safe_text(result: Any, name: str) -> str:
    try:
        return str(getattr(result, name))
    except (ValueError, UnicodeDecodeError):
        data = getattr(result, f"{name}_bytes")
        return bytes(data).decode("utf-8", "replace")


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception as e:  # str() of the exception fails itself (a 5,000-digit int in it)
        return f"<str() failed: {type(e).__name__}>"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _vm(field: str) -> int:
    """VmSize (address space now) or VmPeak (its peak) of this process, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) << 10
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    settings = json.loads(sys.argv[1])
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # C code printing to fd 1 must not break the protocol
    feed = sys.stdin
    worker = Worker(settings["timeout"], settings["memory_mb"], settings["commands"], settings["dump"])
    protocol.write(json.dumps({"ready": True}) + "\n")
    def say_limit(limit: float) -> None:
        protocol.write(json.dumps({"limit": limit}) + "\n")

    for line in feed:
        case = Case.from_json(json.loads(line))
        try:
            rec = worker.run(case, say_limit)
        except Exception as e:  # a bug of the fuzzer's own: say so, never blame archcalc
            rec = {"id": case.id, "kind": "internal", "signature": f"fuzzer bug: {type(e).__name__}: {e}"[:200],
                   "detail": {"traceback": traceback.format_exc()[-2000:]}, "exit": None, "elapsed": 0.0,
                   "limit": None, "message": "", "where": "", "exception": None}
        protocol.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()

"""The parent side: worker processes fed one case at a time, with a watchdog.

Each worker (worker.py) gets a case, says the limit of each run it starts, and answers
with the classified record. The parent waits for that answer until the limit plus
`2 × GRACE`: a case that runs longer is stuck where the worker's own timer cannot reach
it (C code), so the worker is killed, the stack that faulthandler dumped at the limit
tells where it was, and the case is a hang. A worker that dies (EOF) has crashed or was
killed for memory. A worker is replaced after such an event, after a case every
`RECYCLE` cases. Several workers run side by side, one thread each.
"""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.fuzz.cases import Case
from tests.fuzz.classify import classify
from tests.fuzz.corpus import ROOT
from tests.fuzz.worker import BASELINE_CAP, GRACE, dump_frames, record

RECYCLE = 1000
START_TIMEOUT = 300.0
WALL_CAP = 20.0  # a case may take this many times its CPU budget in wall time on a busy machine


class WorkerDied(Exception):
    pass


class WorkerProcess:
    """One worker process and the pipes to it."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.buffer = b""
        self.done = self.starts = 0
        self.log = tempfile.NamedTemporaryFile(prefix="archfuzz-worker-", suffix=".log", delete=False)
        self.dump = self.log.name + ".dump"  # faulthandler's stack at each case's limit
        import archcalc

        self.package = str(Path(archcalc.__file__).resolve().parent) + os.sep

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1",
               "PYTHONFAULTHANDLER": "1", "PYTHONIOENCODING": "utf-8"}
        settings = {**self.settings, "dump": self.dump}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.worker", json.dumps(settings)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, cwd=ROOT,
                                     env=env, bufsize=0)
        self.buffer, self.done = b"", 0
        self._read(self._cpu() + START_TIMEOUT)  # {"ready": true}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        self.log.close()
        for path in (self.log.name, self.dump):
            if os.path.exists(path):
                os.unlink(path)

    def run(self, case: Case) -> dict[str, Any]:
        """The record of one case; restarts the worker when needed."""
        began = time.monotonic()
        if self.proc is None or self.done >= RECYCLE:
            self.stop()
            self.start()
            self.starts += 1
        self.done += 1
        offset = os.path.getsize(self.log.name)
        assert self.proc is not None and self.proc.stdin is not None
        started, limit = time.monotonic(), None
        cpu_deadline = self._cpu() + BASELINE_CAP * 4 + 60  # until the first {"limit": ...}
        try:
            self.proc.stdin.write((json.dumps(case.to_json()) + "\n").encode())
            while "kind" not in (result := self._read(cpu_deadline)):
                started, limit = time.monotonic(), result["limit"]
                cpu_deadline = self._cpu() + limit + 2 * GRACE + 1
        except (WorkerDied, BrokenPipeError, TimeoutError) as e:
            return self._dead(case, e, offset, time.monotonic() - started, limit)
        if result.pop("bloated", False) or result["kind"] in ("hang", "memory"):
            # the cap is relative to the worker's size: start a lean one; and a run stopped by its
            # limit may have been inside an import (torch's), leaving a half-made module behind
            self.stop()
        result["wall"] = round(time.monotonic() - began, 4)
        return result

    def _cpu(self) -> float:
        """The worker's CPU seconds so far (user + system, from /proc): what its limits count."""
        assert self.proc is not None
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _read(self, cpu_deadline: float) -> dict[str, Any]:
        """The worker's next line; TimeoutError once its CPU time passes `cpu_deadline` (or the
        wall clock passes WALL_CAP times that budget: a worker that sleeps is stuck too)."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        wall_deadline = time.monotonic() + max(1.0, cpu_deadline - self._cpu()) * WALL_CAP
        while b"\n" not in self.buffer:
            if self._cpu() > cpu_deadline or time.monotonic() > wall_deadline:
                raise TimeoutError()
            ready, _, _ = select.select([fd], [], [], 0.25)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise WorkerDied()
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def _dead(self, case: Case, error: Exception, offset: int, elapsed: float,
              limit: float | None) -> dict[str, Any]:
        """The record of a case that killed its worker or that the watchdog had to stop."""
        assert self.proc is not None
        hung = isinstance(error, TimeoutError)
        if hung and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack to the log
            try:
                self.proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                pass
        self.proc.kill()
        code = self.proc.wait()
        with open(self.log.name, "rb") as f:
            f.seek(offset)
            dump = f.read().decode("utf-8", "replace")  # a crash's (or the abort's) faulthandler report
        if hung and "File " not in dump and os.path.exists(self.dump):
            with open(self.dump, encoding="utf-8", errors="replace") as f:
                dump = f.read()
        self.proc = None
        frames = [self._frame(file, func, int(line)) for file, line, func in dump_frames(dump)]
        event = "killed" if hung else "memory" if code == -signal.SIGKILL else "crash"
        outcome = {"event": event, "elapsed": elapsed, "limit": limit if limit is not None else elapsed,
                   "frames": frames, "signal": _signal_name(code), "exit": None}
        verdict = classify(case, outcome, _no_rerun)
        return record(case, outcome, verdict.kind, verdict.signature, {**verdict.detail, "log": dump[-1500:]})

    def _frame(self, filename: str, function: str, line: int) -> list[Any]:
        if filename.startswith(self.package):
            return ["archcalc/" + filename[len(self.package):], function, line]
        return ["/".join(Path(filename).parts[-2:]), function, line]


def _signal_name(code: int | None) -> str:
    if code is None or code >= 0:
        return f"exit {code}"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _no_rerun(case: Case) -> dict[str, Any]:
    raise AssertionError("a dead worker's case is classified by its event alone")


class Pool:
    """`jobs` workers; `map` runs cases on them and yields records as they finish."""

    def __init__(self, jobs: int, settings: dict[str, Any]) -> None:
        self.workers = [WorkerProcess(settings) for _ in range(jobs)]

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        for w in self.workers:
            w.close()

    def map(self, cases: Iterable[Case], on_record: Callable[[dict[str, Any]], None]) -> None:
        todo: queue.Queue[Case | None] = queue.Queue()
        for case in cases:
            todo.put(case)
        lock = threading.Lock()

        def drain(worker: WorkerProcess) -> None:
            while True:
                try:
                    case = todo.get_nowait()
                except queue.Empty:
                    return
                rec = worker.run(case)
                with lock:
                    on_record(rec)

        threads = [threading.Thread(target=drain, args=(w,), daemon=True) for w in self.workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def probe(self, case: Case, worker: int = 0) -> dict[str, Any]:
        return self.workers[worker].run(case)

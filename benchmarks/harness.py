"""Timing, memory and result plumbing shared by every benchmark section.

A :class:`Figure` is one measured quantity: its wall-clock samples (median, min, max, n), the
CPU time of the same samples (less sensitive to other work on a busy machine) and the peak
resident memory seen while it ran. Peak memory in-process is measured by resetting the
kernel's high-water mark (``/proc/self/clear_refs``) before each sample; a child process
reports its own peak through ``wait4``'s rusage.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class Skip(Exception):
    """A section cannot run here; the message says why and how to make it run."""


def _status_kb(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark (Linux); False where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024


def peak_rss_mb() -> float | None:
    kb = _status_kb("VmHWM")
    if kb is None:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


@dataclass
class Figure:
    """One measured quantity of one section."""

    name: str
    label: str
    samples: list[float]
    cpu: list[float] = field(default_factory=list)
    unit: str = "s"
    peak_rss_mb: float | None = None
    peak_rss_delta_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label, "unit": self.unit, "median": self.median,
            "min": min(self.samples), "max": max(self.samples), "n": len(self.samples),
            "samples": self.samples,
        }
        if self.cpu:
            out["cpu_median"] = statistics.median(self.cpu)
        if self.peak_rss_mb is not None:
            out["peak_rss_mb"] = round(self.peak_rss_mb, 1)
        if self.peak_rss_delta_mb is not None:
            out["peak_rss_delta_mb"] = round(self.peak_rss_delta_mb, 1)
        out.update(self.extra)
        return out


def measure(name: str, label: str, fn: Callable[[], Any], *, repeat: int,
            setup: Callable[[], Any] | None = None, warmup: int = 0,
            **extra: Any) -> Figure:
    """Time ``fn`` ``repeat`` times in this process (``setup`` runs untimed before each)."""
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    wall: list[float] = []
    cpu: list[float] = []
    peaks: list[float] = []
    deltas: list[float] = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        can_reset = reset_peak_rss()
        before = rss_mb()
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        peak = peak_rss_mb()
        if peak is not None:
            peaks.append(peak)
            if can_reset and before is not None:
                deltas.append(max(0.0, peak - before))
    return Figure(name, label, wall, cpu, peak_rss_mb=max(peaks) if peaks else None,
                  peak_rss_delta_mb=max(deltas) if deltas else None, extra=dict(extra))


@dataclass(frozen=True)
class ProcessSample:
    wall: float
    cpu: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


# A child's ru_maxrss starts at its parent's peak RSS (Linux records the old address space's
# high-water mark at exec), so a child spawned by a 150 MB benchmark process would report
# 150 MB. Children are therefore spawned by a small helper started while this process is
# still small (``start_spawner`` at the beginning of a run).
_SPAWNER_CODE = r"""
import json, os, subprocess, sys, tempfile, time
for line in sys.stdin:
    req = json.loads(line)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            open(os.devnull, "rb") as stdin:
        t0 = time.perf_counter()
        proc = subprocess.Popen(req["argv"], cwd=req["cwd"], env=req["env"], stdin=stdin,
                                stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0); err.seek(0)
        print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                          "peak": usage.ru_maxrss / 1024,
                          "rc": os.waitstatus_to_exitcode(status),
                          "stdout": out.read().decode(errors="replace"),
                          "stderr": err.read().decode(errors="replace")}), flush=True)
"""
_spawner: subprocess.Popen[str] | None = None


def start_spawner() -> None:
    """Start the helper that spawns measured processes (call while this process is small)."""
    global _spawner
    if _spawner is None:
        _spawner = subprocess.Popen([sys.executable, "-S", "-c", _SPAWNER_CODE], text=True,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def run_process(argv: Sequence[str], *, cwd: Path | None = None,
                env: dict[str, str] | None = None, timeout: float = 300) -> ProcessSample:
    """Run ``argv`` to completion: wall time, CPU time and peak RSS of that child alone."""
    start_spawner()
    assert _spawner is not None and _spawner.stdin is not None and _spawner.stdout is not None
    request = {"argv": list(argv), "cwd": str(cwd) if cwd else None,
               "env": dict(os.environ if env is None else env)}
    _spawner.stdin.write(json.dumps(request) + "\n")
    _spawner.stdin.flush()
    line = _spawner.stdout.readline()
    if not line:
        raise RuntimeError("the process-spawning helper died")
    r = json.loads(line)
    return ProcessSample(r["wall"], r["cpu"], r["peak"], r["rc"], r["stdout"], r["stderr"])


def measure_process(name: str, label: str, argv: Sequence[str], *, repeat: int,
                    cwd: Path | None = None, env: dict[str, str] | None = None,
                    warmup: int = 1, check: Callable[[ProcessSample], str | None] | None = None,
                    **extra: Any) -> Figure:
    """Time a whole process ``repeat`` times; ``check`` returns an error text for a bad run."""
    samples: list[ProcessSample] = []
    for i in range(warmup + repeat):
        sample = run_process(argv, cwd=cwd, env=env)
        problem = (f"exit code {sample.returncode}" if sample.returncode != 0
                   else check(sample) if check else None)
        if problem:
            raise RuntimeError(f"{' '.join(argv)} failed ({problem}):\n{sample.stderr[-2000:]}")
        if i >= warmup:
            samples.append(sample)
    return Figure(name, label, [s.wall for s in samples], [s.cpu for s in samples],
                  peak_rss_mb=max(s.peak_rss_mb for s in samples), extra=dict(extra))


def fmt_seconds(value: float) -> str:
    if value != value:  # NaN
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def fmt_value(value: float, unit: str) -> str:
    if unit == "s":
        return fmt_seconds(value)
    if unit == "GB/s":
        return f"{value:.2f} GB/s"
    if unit == "count":
        return f"{value:g}"
    return f"{value:.3g} {unit}"

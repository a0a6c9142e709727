"""Render results: the table on stdout, ``latest.json`` and the Markdown table for the README."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import fmt_seconds, fmt_value


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    with contextlib.suppress(ValueError, OSError):
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(),
            "memory_gb": mem_gb, "load_avg_at_end": load}


def git_sha(root: Path) -> str | None:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or None


def build(figures: dict[str, dict[str, Any]], targets: list[dict[str, Any]],
          skipped: dict[str, str], notes: list[str], preset: str, root: Path) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "preset": preset,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "machine": machine(),
        "git_sha": git_sha(root),
        "figures": figures,
        "targets": targets,
        "skipped": skipped,
        "notes": notes,
    }


def _cell(fig: dict[str, Any], key: str) -> str:
    value = fig.get(key)
    return "-" if value is None else fmt_value(float(value), fig.get("unit", "s"))


def _derived(fig: dict[str, Any]) -> str:
    parts = []
    if "per_step_s" in fig:
        parts.append(f"{fmt_seconds(fig['per_step_s'])}/step")
    if "gb_per_s" in fig:
        parts.append(f"{fig['gb_per_s']:.2f} GB/s")
    if "vs_np_save" in fig:
        parts.append(f"{fig['vs_np_save']:.2f}x np.save")
    if "statements_per_step" in fig:
        parts.append(f"{fig['statements_per_step']:g} stmt/step")
    if "round_trips_per_step" in fig:
        parts.append(f"{fig['round_trips_per_step']:g} round trips/step")
    if "gcs_requests_per_step" in fig:
        parts.append(f"{fig['gcs_requests_per_step']:g} GCS req/step")
    if "sequential_round_trips" in fig:  # the distance section: counts per run
        parts.append(f"{fig['sequential_round_trips']:g} sequential RT, "
                     f"{fig['statements']:g} stmt, {fig['db_round_trips']:g} DB RT, "
                     f"{fig['gcs_requests']:g} GCS req per run")
    if "wall_round_trips" in fig:  # the distance section: wall time / round-trip time
        parts.append(f"wall = {fig['wall_round_trips']:.1f} RTT")
    if "vs_zenml" in fig:
        parts.append(f"ZenML/collab {fig['vs_zenml']:.1f}x")
    if "api_requests" in fig:
        parts.append(f"{fig['api_requests']:g} API req ({fig.get('mutating_requests', 0):g} writes)")
    if "checks" in fig:
        parts.append(f"{fig.get('checks_passed', 0)}/{fig['checks']} checks pass")
    return ", ".join(parts)


def rows(results: dict[str, Any]) -> list[list[str]]:
    out = []
    for fig in results["figures"].values():
        peak = fig.get("peak_rss_mb")
        delta = fig.get("peak_rss_delta_mb")
        mem = "-" if peak is None else f"{peak:.0f} MB" + (f" (+{delta:.0f})" if delta else "")
        cpu = fig.get("cpu_median")
        out.append([fig["label"], _cell(fig, "median"), _cell(fig, "min"), _cell(fig, "max"),
                    str(fig["n"]), "-" if cpu is None else fmt_seconds(cpu), mem, _derived(fig)])
    return out


HEADER = ["benchmark", "median", "min", "max", "n", "cpu", "peak RSS", "derived"]


def _target_lines(results: dict[str, Any]) -> list[list[str]]:
    lines = []
    for t in results["targets"]:
        if t["status"] == "not measured":
            lines.append([t["text"], "-", "not measured"])
        else:
            lines.append([t["text"], fmt_value(t["value"], t["unit"]), t["status"]])
    return lines


def text_table(results: dict[str, Any]) -> str:
    def render(header: list[str], body: list[list[str]]) -> list[str]:
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
        return [fmt.format(*header), fmt.format(*("-" * w for w in widths)),
                *(fmt.format(*r) for r in body)]

    m = results["machine"]
    lines = [f"zenml-collab benchmarks ({results['preset']}), python {results['python']}, "
             f"{m['cpus']} CPUs {m['cpu']}, {results['date']}", ""]
    lines += render(HEADER, rows(results))
    lines += ["", *render(["target", "value", "status"], _target_lines(results))]
    for section, reason in results["skipped"].items():
        lines.append(f"skipped {section}: {reason}")
    for note in results["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    def table(header: list[str], body: list[list[str]]) -> list[str]:
        return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                *("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in body)]

    m = results["machine"]
    lines = [f"Measured with `scripts/bench` ({results['preset']} preset) on {m['cpus']} CPUs "
             f"({m['cpu']}), Python {results['python']}, {results['date'][:10]}, "
             f"commit {str(results['git_sha'])[:10]}. Wall-clock median of n runs; cpu is the "
             "median CPU time of the same runs.", ""]
    lines += table(HEADER, rows(results))
    lines += ["", *table(["target", "value", "status"], _target_lines(results))]
    if results["skipped"]:
        lines.append("")
        lines += [f"- skipped {s}: {r}" for s, r in results["skipped"].items()]
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "latest.json"
    md_path = out_dir / "latest.md"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(results), encoding="utf-8")
    return json_path, md_path

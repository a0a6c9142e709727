"""``--vs zenml``: the equivalent 20-step and 100 MB pipelines on ZenML, side by side.

ZenML (``zenml[local]``) lives in its own virtualenv, ``.bench/zenml-venv`` (gitignored),
built here on first use with pip. Its pipelines (``zenml_side.py``) use the modern ``@step`` /
``@pipeline`` API with caching on, in a fresh ``zenml init`` directory with its own global
config (``ZENML_CONFIG_PATH``), so nothing touches the user's ZenML setup.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.context import Context
from benchmarks.harness import Figure, Skip, measure_process

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench" / "zenml-venv"
SIDE = Path(__file__).with_name("zenml_side.py")
PACKAGES = ["zenml[local]", "numpy"]


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv(ctx: Context) -> Path:
    python = venv_python()
    probe = [str(python), "-c", "import zenml, numpy"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    ctx.say(f"building {VENV} with {' '.join(PACKAGES)} (a few minutes, once)")
    VENV.parent.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", *PACKAGES], check=False)
    if done.returncode != 0 or subprocess.run(probe, check=False).returncode != 0:
        raise Skip(f"could not install {' '.join(PACKAGES)} into {VENV} (pip exit code "
                   f"{done.returncode}); delete the directory and retry")
    return python


def zenml_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENML_", "PYTHON"))}
    env.update({
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_LOGGING_VERBOSITY": "ERROR",
        "AUTO_OPEN_DASHBOARD": "false",
        "ZENML_CONFIG_PATH": str(workdir / ".zenml-global"),
        "ZENML_ENABLE_RICH_TRACEBACK": "false",
    })
    return env


def run(ctx: Context, ours: dict[str, dict[str, Any]]) -> list[Figure]:
    python = ensure_venv(ctx)
    workdir = ctx.workdir / "zenml"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    env = zenml_env(workdir)
    shutil.copy(SIDE, workdir / SIDE.name)
    init = subprocess.run([str(VENV / "bin" / "zenml"), "init"], cwd=workdir, env=env,
                          capture_output=True, text=True, check=False)
    if init.returncode != 0:
        raise Skip(f"`zenml init` failed: {init.stderr.strip()[-500:]}")
    sizes = ctx.sizes
    cfg = {"chain_length": sizes.chain_length, "big_count": sizes.big_count,
           "big_mb": sizes.big_mb, "repeat_cold": sizes.zenml_repeat_cold,
           "repeat_cached": sizes.zenml_repeat_cached, "repeat_big": sizes.zenml_repeat_big}
    ctx.say("running the ZenML pipelines")
    done = subprocess.run([str(python), SIDE.name, "measure", json.dumps(cfg)], cwd=workdir,
                          env=env, capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the ZenML side failed:\n{done.stderr[-3000:]}")
    samples: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])["samples"]
    version = subprocess.run([str(python), "-c", "import zenml; print(zenml.__version__)"],
                             env=env, capture_output=True, text=True, check=False).stdout.strip()
    what = f"ZenML {version}"
    length, count, mb = sizes.chain_length, sizes.big_count, sizes.big_mb
    labels = {
        "zenml_chain_cold": (f"{what}: {length} trivial steps, cold (in-process)", "chain_cold"),
        "zenml_chain_cached": (f"{what}: {length} trivial steps, cached re-run (in-process)",
                               "chain_cached"),
        "zenml_big_cold": (f"{what}: {count} x {mb} MiB numpy, cold (in-process)", "big_cold"),
        "zenml_big_cached": (f"{what}: {count} x {mb} MiB numpy, cached re-run (in-process)",
                             "big_cached"),
    }
    figures = []
    for name, (label, ours_name) in labels.items():
        fig = Figure(name, label, samples[name], extra={"zenml_version": version})
        steps = length if "chain" in name else count
        fig.extra["steps"] = steps
        fig.extra["per_step_s"] = fig.median / steps
        if ours_name in ours:
            # How many times slower ZenML is than zenml-collab on the same work.
            fig.extra["vs_zenml"] = fig.median / float(ours[ours_name]["median"])
        figures.append(fig)
    n = sizes.repeat_process
    figures.append(measure_process("zenml_import", f"{what}: import zenml (process)",
                                   [str(python), "-c", "import zenml"], env=env, repeat=n))
    figures.append(measure_process(
        "zenml_chain_cached_process", f"{what}: cached {length}-step run (process)",
        [str(python), SIDE.name, "cached-run", str(length)], cwd=workdir, env=env,
        repeat=max(1, n // 2), steps=length))
    for name, ours_name in (("zenml_import", "import"),
                            ("zenml_chain_cached_process", "chain_cached_process")):
        fig = figures[-1] if name == "zenml_chain_cached_process" else figures[-2]
        if ours_name in ours:
            fig.extra["vs_zenml"] = fig.median / float(ours[ours_name]["median"])
    return figures

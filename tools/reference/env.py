"""A throwaway environment with the reference implementation (BasicSR 1.4.2), for developers only.

Nothing in ``edvr_lib`` or ``tests`` needs it: the parity fixtures it produces are committed under
``tests/fixtures/parity/``. Usage from another developer script::

    from tools.reference.env import ensure_reference   # run from the repository root
    python_exe, env = ensure_reference()
    subprocess.run([python_exe, "-c", "import basicsr.archs.edvr_arch"], env=env, check=True)

What it does (idempotent):
1. ``.venv/bin/pip install --no-deps --no-build-isolation --target .reference_venv/site basicsr==1.4.2``
   (BasicSR's pure-Python code; its compiled ops are not built, and its DCN uses ``torchvision.ops.deform_conv2d``).
2. Writes ``.reference_venv/shim/sitecustomize.py`` registering ``torchvision.transforms.functional_tensor``
   (removed in torchvision 0.17, still imported by BasicSR 1.4.2, BasicSR#663) as an alias of
   ``torchvision.transforms.functional``.
3. Returns the project interpreter and an environment whose ``PYTHONPATH`` puts both first.
``.reference_venv/`` is git-ignored; delete it to start over.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REF_DIR = REPO / ".reference_venv"
SITE = REF_DIR / "site"
SHIM = REF_DIR / "shim"
BASICSR_VERSION = "1.4.2"

_SHIM_CODE = '''\
"""Make BasicSR 1.4.2 importable with torchvision >= 0.17 (functional_tensor was removed)."""
import sys

try:
    import torchvision.transforms.functional as _functional

    sys.modules.setdefault("torchvision.transforms.functional_tensor", _functional)
except Exception:  # torchvision missing: let the real import error surface later
    pass
'''


def project_python() -> str:
    """The repository's ``.venv`` interpreter (falls back to the running one)."""
    exe = REPO / ".venv" / "bin" / "python"
    return str(exe) if exe.exists() else sys.executable


def ensure_reference(quiet: bool = True) -> tuple[str, dict[str, str]]:
    """Install BasicSR into ``.reference_venv/site`` when missing; return ``(python_exe, env)`` to run it.

    Raises:
        RuntimeError: when the install or the import check fails (with pip's output).
    """
    python = project_python()
    if not (SITE / "basicsr" / "archs" / "edvr_arch.py").exists():
        cmd = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", "--no-build-isolation",
               "--target", str(SITE), f"basicsr=={BASICSR_VERSION}"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"installing basicsr failed:\n{' '.join(cmd)}\n{res.stdout}\n{res.stderr}")
    SHIM.mkdir(parents=True, exist_ok=True)
    shim_file = SHIM / "sitecustomize.py"
    if not shim_file.exists() or shim_file.read_text() != _SHIM_CODE:
        shim_file.write_text(_SHIM_CODE)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SHIM), str(SITE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("CUDA_VISIBLE_DEVICES", "")  # fixtures are made on CPU
    check = subprocess.run([python, "-c", "import basicsr, basicsr.archs.edvr_arch as m; print(basicsr.__version__)"],
                           env=env, capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"importing the reference failed:\n{check.stderr[-3000:]}")
    if not quiet:
        print(f"reference basicsr {check.stdout.strip()} at {SITE}")
    return python, env


if __name__ == "__main__":
    ensure_reference(quiet=False)

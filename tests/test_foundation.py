"""Packaging, environment files, CLI plumbing, atomic writes and the environment check."""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import edvr_lib
from edvr_lib import cli, env
from edvr_lib.utils import atomic_path, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_lock_pins_satisfy_pyproject_ranges():
    pins = _lock()
    project = _pyproject()["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for spec in reqs:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} is required by pyproject.toml but not pinned in requirements-lock.txt"
        assert req.specifier.contains(pins[name], prereleases=True), f"lock pins {name}=={pins[name]}, outside {req}"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_environment_yml_agrees_with_pyproject():
    from rattler import MatchSpec, Version, VersionSpec

    envfile = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = envfile["dependencies"]
    conda_specs = [MatchSpec(d) for d in deps if isinstance(d, str)]
    by_name = {str(s).split()[0]: s for s in conda_specs}
    assert {"python", "pip"} <= set(by_name)
    # the conda python spec and pyproject's requires-python must accept the same interpreter (3.11.x)
    requires_python = Requirement("python" + _pyproject()["project"]["requires-python"]).specifier
    conda_python = VersionSpec(by_name["python"].version)
    assert conda_python.matches(Version("3.11.7")) and requires_python.contains("3.11.7")
    assert not conda_python.matches(Version("3.10.14")) and not requires_python.contains("3.10.14")
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-r requirements-lock.txt" in pip_section and "-e ." in pip_section
    assert (ROOT / "requirements-lock.txt").exists()
    assert "opencv-python-headless" in _lock()


@pytest.mark.slow
def test_lock_resolves_to_itself(tmp_path):
    """pip resolves the lock (the environment.yml pip section) with nothing missing or extra."""
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
                    "--disable-pip-version-check", "--report", str(report), "-r", str(ROOT / "requirements-lock.txt")],
                   check=True, capture_output=True)
    resolved = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
                for i in json.loads(report.read_text())["install"]}
    assert resolved == _lock()


def test_readme_quickstart_and_ci_use_the_make_commands():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quickstart", 1)[1]
    commands = re.findall(r"^(make \w+)", quick, re.M)
    assert commands[:2] == ["make tutorial", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:.*", makefile, re.M) and "EDVR_SMOKE=1" in makefile


def test_cli_help_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "edvr_lib", "--help"], capture_output=True, text=True, check=True)
    assert "env" in out.stdout
    out = subprocess.run([sys.executable, "-m", "edvr_lib", "env", "--no-measure", "--json"], capture_output=True,
                         text=True, check=True)
    report = json.loads(out.stdout)
    assert report["versions"]["torch"].startswith("2.")
    assert report["devices"][0]["name"] == "cpu"


def test_cli_prints_user_errors_without_traceback(tmp_path, monkeypatch, capsys):
    (tmp_path / "fake_cmd.py").write_text(
        "from edvr_lib.utils import EDVRError\n"
        "def add_arguments(p): p.add_argument('--path')\n"
        "def run(args): raise EDVRError(f'{args.path} does not exist; pass an existing folder')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "fake", ("fake_cmd", "test command"))
    assert cli.main(["fake", "--path", "/nope"]) == 2
    err = capsys.readouterr().err
    assert "/nope does not exist" in err and "Traceback" not in err


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "sub" / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    atomic_write_text(dest, "whole")
    assert dest.read_text() == "whole" and len(list(dest.parent.iterdir())) == 1


def test_dcn_check_passes_on_cpu():
    ok, detail = env.dcn_check("cpu")
    assert ok, detail
    assert "passed" in detail


def test_dcn_check_reports_failure_instead_of_crashing():
    ok, detail = env.dcn_check("no-such-device")
    assert not ok and detail


def test_widget_frontend_matches_installed_ipywidgets():
    ok, detail = env.widget_frontend()
    assert ok, detail


def test_verdicts_follow_the_measurements():
    cpu = env.DeviceInfo("cpu", "test cpu", 16.0, dense_conv_gflops=150.0, dcn_ok=True)
    rows = {r["task"].split(" (")[0]: r for r in env.verdicts([cpu], mem_available_gb=12, disk_gb=500)}
    assert rows["smoke run on CPU"]["verdict"] == "yes"
    assert rows["full tutorial on CPU"]["verdict"] == "yes"
    assert rows["EDVR-M training on GPU"]["verdict"] == "no"
    slow_cpu = env.DeviceInfo("cpu", "slow", 16.0, dense_conv_gflops=5.0, dcn_ok=True)
    rows = {r["task"].split(" (")[0]: r for r in env.verdicts([slow_cpu], 12, 500)}
    assert rows["full tutorial on CPU"]["verdict"] == "no"
    gpu = env.DeviceInfo("cuda:0", "test gpu", 12.0, dense_conv_gflops=20000.0, dcn_ok=True)
    rows = {r["task"].split(" (")[0]: r for r in env.verdicts([cpu, gpu], 12, 500)}
    assert rows["EDVR-M training on GPU"]["verdict"] == "yes"
    assert rows["EDVR-L training on GPU"]["verdict"] == "no"  # 12 GiB < 24
    rows = {r["task"].split(" (")[0]: r for r in env.verdicts([cpu, gpu], 12, disk_gb=20)}
    assert rows["EDVR-M training on GPU"]["verdict"] == "no"  # no room for REDS
    broken = env.DeviceInfo("cpu", "broken", 16.0, dense_conv_gflops=150.0, dcn_ok=False)
    assert env.verdicts([broken], 12, 500)[0]["verdict"] == "no"


def test_disk_free_is_measured_at_the_nearest_existing_folder(tmp_path, monkeypatch):
    path, free = env.disk_free_gb(tmp_path / "not" / "yet")
    assert path == tmp_path / "not" / "yet" and free > 0
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: (_ for _ in ()).throw(PermissionError("denied")))
    path, free = env.disk_free_gb(tmp_path)
    assert math.isnan(free)  # unreadable: reported as unknown, not a crash


def test_version_is_exposed():
    assert edvr_lib.__version__ == _pyproject()["project"]["version"]
    with pytest.raises(AttributeError):
        edvr_lib.not_a_thing  # noqa: B018

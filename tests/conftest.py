import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

BIN = Path(sys.executable).parent
WORKFLOW_PARTS = ["Snakefile", "workflow", "config", "profiles", "envs", "src", "tests/config"]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def copy_workflow(dest: Path) -> Path:
    """The workflow in a scratch folder, so a test run never touches the checkout's results/."""
    for part in WORKFLOW_PARTS:
        source = REPO / part
        target = dest / part
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    engine_venv = REPO / ".venv-vllm"  # vLLM's CPU build lives in a venv of its own
    if engine_venv.is_dir():
        (dest / ".venv-vllm").symlink_to(engine_venv)
    return dest


@pytest.fixture
def workflow_copy(tmp_path) -> Path:
    return copy_workflow(tmp_path / "wf")


def run_snakemake(cwd: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        [str(BIN / "snakemake"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """The test config's whole DAG, run once locally; several test modules read it."""
    workdir = copy_workflow(tmp_path_factory.mktemp("run"))
    done = run_snakemake(workdir, "--cores", "2", "--configfile", "tests/config/test.yaml")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return workdir

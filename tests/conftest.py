import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

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

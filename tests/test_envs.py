"""One source of versions: every package pinned in envs/*.yaml has envs/constraints.txt's
version, but for the GPU builds listed here; the train env holds the training frameworks."""

import re
from pathlib import Path

import yaml

ENVS = Path(__file__).parent.parent / "envs"
# GPU builds that differ from the CPU pins on purpose
GPU_BUILDS = {
    # the CUDA build vLLM 0.24 and the GPU machines' image are built for; the CPU wheel is 2.13
    "torch": "2.11.0",
}
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)")


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        match = PIN.match(line.strip())
        if match:
            found[match.group(1).lower().split("[")[0]] = match.group(2)
    return found


def env_pins(name: str) -> dict[str, str]:
    env = yaml.safe_load((ENVS / name).read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return pins(pip)


def test_every_env_pins_the_constraints_versions():
    constraints = pins((ENVS / "constraints.txt").read_text().splitlines())
    for env in sorted(ENVS.glob("*.yaml")):
        for package, version in env_pins(env.name).items():
            expected = GPU_BUILDS.get(package, constraints.get(package))
            if expected is not None:
                assert version == expected, f"{env.name}: {package}=={version}, pinned {expected}"


def test_the_train_env_holds_the_training_frameworks():
    train = env_pins("train.yaml")
    for package in ("deepspeed", "megatron-core", "bitsandbytes", "peft", "transformers"):
        assert package in train, package


def test_the_lmdeploy_setup_names_a_missing_wheel_folder(tmp_path):
    """Refused before any venv is made: the folder is named, nothing is created."""
    import subprocess

    root = ENVS.parent
    missing = tmp_path / "no-wheels"
    done = subprocess.run(
        ["bash", "envs/setup-lmdeploy-gpu.sh", str(missing)],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert f"no wheel folder at '{missing}'" in done.stderr


def test_the_lmdeploy_pins_hold_no_second_torch():
    """The venv uses the machine's torch and transformers: the pins must not bring their own."""
    lmdeploy = pins((ENVS / "lmdeploy-gpu.txt").read_text().splitlines())
    assert lmdeploy.get("lmdeploy") == "0.18.0"
    assert not {"torch", "transformers", "triton"} & set(lmdeploy)

"""Warm-started probes: forked from a helper that imported their modules, each in its own
session with its own log and environment; a time limit kills it, a crash is its exit code."""

import os
import signal
import time

from llmdissect.training.warm_start import WarmStarter, warm_imports

TARGET = """
import os, time

print("imported, and printing to stdout")  # must not reach the helper's answers


def run(argv):
    alone = os.getsid(0) == os.getpid()
    print("argv", argv, "env", os.environ.get("PROBE_VALUE"), "session", alone)
    if argv[0] == "sleep":
        time.sleep(float(argv[1]))
    if argv[0] == "crash":
        os.kill(os.getpid(), 11)
    if argv[0] == "fail":
        raise ValueError("the probe failed")
"""


def helper(tmp_path):
    (tmp_path / "fake_probe.py").write_text(TARGET)
    env = {
        "PYTHONPATH": f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}",
        "PATH": os.environ["PATH"],
    }
    return WarmStarter(env, ["fake_probe"]), env


def test_a_forked_probe_runs_in_its_own_session_with_its_own_env_and_log(tmp_path):
    starter, env = helper(tmp_path)
    try:
        log = tmp_path / "one.log"
        pid = starter.start(["hello"], {**env, "PROBE_VALUE": "42"}, log, "fake_probe:run")
        code, timed_out = starter.wait(pid, 30)
        assert (code, timed_out) == (0, False)
        assert "argv ['hello'] env 42 session True" in log.read_text()
        failed = starter.start(["fail"], env, tmp_path / "two.log", "fake_probe:run")
        assert starter.wait(failed, 30)[0] != 0
        assert "ValueError: the probe failed" in (tmp_path / "two.log").read_text()
        crashed = starter.start(["crash"], env, tmp_path / "three.log", "fake_probe:run")
        assert starter.wait(crashed, 30) == (-signal.SIGSEGV, False)
    finally:
        starter.close()


def test_a_probe_past_its_time_limit_is_killed(tmp_path):
    starter, env = helper(tmp_path)
    try:
        started = time.monotonic()
        pid = starter.start(["sleep", "60"], env, tmp_path / "slow.log", "fake_probe:run")
        assert starter.wait(pid, 1.0) == (-signal.SIGKILL, True)
        assert time.monotonic() - started < 20
        again = starter.start(["quick"], env, tmp_path / "after.log", "fake_probe:run")
        assert starter.wait(again, 30) == (0, False)  # the helper serves on
    finally:
        starter.close()


def test_each_framework_warms_what_its_probes_import():
    assert "megatron.core" in warm_imports("megatron", "baseline")
    assert {"peft", "bitsandbytes"} <= set(warm_imports("torch", "qlora"))
    assert warm_imports("deepspeed", "zero2")[0] == "llmdissect.training.probe"

"""Serving metrics on hand-made traces, and the load generator against the synthetic server
(a fault injector: failed and short responses on demand, which a real engine cannot give)."""

import asyncio
import sys
import time
from dataclasses import replace

import pytest

from llmdissect.serving.engines import EngineDied, EngineServer, Launch, free_port
from llmdissect.serving.loadgen import Arrivals, Endpoint, request_body, run_load
from llmdissect.serving.metrics import serving_metrics
from llmdissect.serving.trace import RequestTrace, read_traces, write_traces


def trace(index, sent, arrivals, expected=None, tokens=None, failure=None, end=None):
    """A request ending at its last chunk, or at `end` (a failed one keeps its end too)."""
    chunks = [(t, 1) for t in arrivals]
    return RequestTrace(
        index=index,
        prompt_tokens=10,
        expected_tokens=expected or len(arrivals),
        sent=sent,
        finished=end if end is not None else (arrivals[-1] if arrivals else None),
        chunks=chunks,
        reported_tokens=tokens,
        error=f"{failure}: details" if failure else None,
        failure=failure,
    )


def test_latencies_follow_their_definitions():
    # request 0: sent at 0, tokens at 0.5, 0.6, 0.8 -> TTFT 500 ms, E2E 800, TPOT 150, ITL 100/200
    # request 1: sent at 0.1, tokens at 0.3, 0.4     -> TTFT 200 ms, E2E 300, TPOT 100, ITL 100
    metrics = serving_metrics([trace(0, 0.0, [0.5, 0.6, 0.8]), trace(1, 0.1, [0.3, 0.4])])
    assert metrics["ttft_mean_ms"] == pytest.approx(350)
    assert metrics["ttft_median_ms"] == pytest.approx(350)
    assert metrics["e2e_mean_ms"] == pytest.approx(550)
    assert metrics["tpot_mean_ms"] == pytest.approx(125)
    assert metrics["itl_mean_ms"] == pytest.approx(400 / 3)
    assert metrics["itl_median_ms"] == pytest.approx(100)
    # makespan 0.8 s; 5 output tokens, 20 prompt tokens, 2 requests
    assert metrics["makespan_s"] == pytest.approx(0.8)
    assert metrics["output_tokens_per_s"] == pytest.approx(5 / 0.8)
    assert metrics["total_tokens_per_s"] == pytest.approx(25 / 0.8)
    assert metrics["requests_per_s"] == pytest.approx(2 / 0.8)


def test_failed_and_short_requests_are_counted_not_dropped():
    traces = [
        trace(0, 0.0, [0.1, 0.2], expected=2),
        trace(1, 0.0, [0.1], expected=2),  # stopped early at an EOS it was free to honour
        trace(2, 0.0, [], expected=2, failure="http 500", end=0.05),
        trace(3, 0.0, [0.1], expected=2, failure="truncated", end=0.4),
    ]
    metrics = serving_metrics(traces)
    assert (metrics["requests"], metrics["completed"], metrics["failed"]) == (4, 2, 2)
    assert (metrics["failed_http_500"], metrics["failed_truncated"], metrics["truncated"]) == (
        1,
        1,
        1,
    )
    assert metrics["token_count_mismatches"] == 1
    assert metrics["output_tokens"] == 3
    # completed-only makespan ends at 0.2 s; the whole run at the truncated request's end, 0.4 s
    assert metrics["output_tokens_per_s"] == pytest.approx(3 / 0.2)
    assert metrics["makespan_all_s"] == pytest.approx(0.4)
    assert metrics["output_tokens_per_s_all"] == pytest.approx(3 / 0.4)
    assert metrics["requests_per_s_all"] == pytest.approx(2 / 0.4)


def test_engine_token_count_wins_over_chunk_count():
    # one chunk carrying four tokens: TPOT uses the engine's count
    one = RequestTrace(0, 10, 4, sent=0.0, finished=0.5, chunks=[(0.2, 1), (0.5, 3)])
    one.reported_tokens = 4
    metrics = serving_metrics([one])
    assert metrics["tpot_mean_ms"] == pytest.approx(100)
    assert metrics["token_count_mismatches"] == 0


def test_a_run_where_everything_failed_has_no_throughput():
    metrics = serving_metrics([trace(0, 0.0, [], expected=2, failure="connection", end=0.1)])
    assert metrics["completed"] == 0 and "output_tokens_per_s" not in metrics
    assert "output_tokens_per_s_all" not in metrics and metrics["failed_connection"] == 1


def test_traces_round_trip(tmp_path):
    traces = [trace(0, 0.0, [0.5, 0.6]), trace(1, 0.1, [], failure="timeout", end=0.7)]
    write_traces(tmp_path / "t.jsonl", traces)
    assert read_traces(tmp_path / "t.jsonl") == traces


def test_traces_keep_microseconds_and_gzip_by_suffix(tmp_path):
    one = RequestTrace(0, 10, 2, sent=0.1234564, finished=1.0000004, chunks=[(0.5000006, 2)])
    write_traces(tmp_path / "t.jsonl.gz", [one])
    (back,) = read_traces(tmp_path / "t.jsonl.gz")
    assert (back.sent, back.finished, back.chunks) == (0.123456, 1.0, [(0.500001, 2)])
    assert (tmp_path / "t.jsonl.gz").read_bytes()[:2] == b"\x1f\x8b"  # gzip's magic


def test_request_bodies_match_the_engine():
    words = {5: "w5", 6: "w6"}.get
    ids = Endpoint("http://x", "m")
    assert request_body(ids, [5, 6], 8, words)["prompt"] == [5, 6]
    chat = Endpoint("http://x", "m", api="chat", prompt_as="text", ignore_eos=False)
    body = request_body(chat, [5, 6], 8, words)
    assert body["messages"] == [{"role": "user", "content": "w5 w6"}]
    assert "ignore_eos" not in body and body["max_tokens"] == 8


def test_arrival_modes_are_checked_and_poisson_is_seeded():
    with pytest.raises(ValueError, match="rate"):
        Arrivals("poisson")
    with pytest.raises(ValueError, match="not one of"):
        Arrivals("trickle")
    offsets = Arrivals("poisson", rate=10.0, seed=3).send_offsets(2000)
    assert offsets[0] == 0 and (offsets[1:] >= offsets[:-1]).all()
    assert 2000 / offsets[-1] == pytest.approx(10.0, rel=0.1)
    assert (Arrivals("poisson", rate=10.0, seed=3).send_offsets(5) == offsets[:5]).all()


def synthetic(tmp_path, *flags):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "llmdissect.serving.synthetic_server", "--port", str(port)]
    launch = Launch([*command, *flags], {}, base + "/health", Endpoint(base, "m"))
    return EngineServer(launch, tmp_path / "server.log", deadline_s=60)


def test_load_generator_keeps_every_request_and_its_faults(tmp_path):
    # the server fails its 4th, 8th, 12th request and halves its 3rd, 6th, 9th (12th failed),
    # ending those with finish_reason "stop"
    with synthetic(tmp_path, "--fail-every", "4", "--short-every", "3") as server:
        endpoint = server.launch.endpoint  # 12 requests: the same faults in each run
        told_to_ignore_eos = asyncio.run(run_load(endpoint, [[1, 2, 3]] * 12, 6, Arrivals()))
        free_to_stop = replace(endpoint, ignore_eos=False)
        allowed_to_stop = asyncio.run(run_load(free_to_stop, [[1, 2, 3]] * 12, 6, Arrivals()))
    for traces in (told_to_ignore_eos, allowed_to_stop):
        assert [t.index for t in traces] == list(range(12))
        assert all(len(t.chunks) == t.output_tokens for t in traces if t.ok)
    # sent ignore_eos, a short response is truncated: a failure
    metrics = serving_metrics(told_to_ignore_eos)
    assert (metrics["failed"], metrics["failed_http_500"], metrics["truncated"]) == (6, 3, 3)
    assert metrics["token_count_mismatches"] == 0
    # not sent ignore_eos, an early "stop" completes with the wrong length
    metrics = serving_metrics(allowed_to_stop)
    assert (metrics["failed"], metrics["failed_http_500"], metrics["truncated"]) == (3, 3, 0)
    assert metrics["token_count_mismatches"] == 3


def test_concurrency_mode_caps_requests_in_flight(tmp_path):
    with synthetic(tmp_path, "--token-delay-ms", "20") as server:
        arrivals = Arrivals("concurrency", concurrency=2)
        traces = asyncio.run(run_load(server.launch.endpoint, [[1]] * 6, 5, arrivals))
    events = sorted([(t.sent, 1) for t in traces] + [(t.finished, -1) for t in traces])
    in_flight = peak = 0
    for _, change in events:
        in_flight += change
        peak = max(peak, in_flight)
    assert peak == 2


def test_an_engine_that_dies_at_start_reports_its_log(tmp_path):
    launch = Launch(
        [sys.executable, "-c", "import sys; print('no such model'); sys.exit(3)"],
        {},
        "http://127.0.0.1:9/health",
        Endpoint("http://127.0.0.1:9", "m"),
    )
    with pytest.raises(EngineDied, match="no such model"):
        with EngineServer(launch, tmp_path / "server.log", deadline_s=30):
            pass


def test_workers_are_stopped_when_the_engine_leader_died(tmp_path):
    # the leader starts a worker in its group, then dies before it is healthy
    script = (
        "import subprocess, sys; "
        "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
        "print(w.pid, flush=True); sys.exit(1)"
    )
    launch = Launch([sys.executable, "-c", script], {}, "http://127.0.0.1:9/health",
                    Endpoint("http://127.0.0.1:9", "m"))  # fmt: skip
    server = EngineServer(launch, tmp_path / "server.log", deadline_s=30)
    with pytest.raises(EngineDied):
        with server:
            pass
    worker = int((tmp_path / "server.log").read_text().split()[0])
    deadline = time.monotonic() + 10  # a SIGKILL lands when the kernel next schedules it
    while alive(worker):
        assert time.monotonic() < deadline, "the worker outlived its engine"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_missing_engine_interpreter_is_refused_before_any_job(repo):
    import copy

    import yaml

    from llmdissect.config import ConfigError, check_config, load_schema

    config = yaml.safe_load((repo / "config/config.yaml").read_text())
    config = copy.deepcopy(config)
    config["engines"]["vllm-cpu"]["python"] = "/nowhere/bin/python"
    with pytest.raises(ConfigError, match="engines.vllm-cpu.python: no interpreter"):
        check_config(config, load_schema(repo / "workflow/schemas/config.schema.yaml"))

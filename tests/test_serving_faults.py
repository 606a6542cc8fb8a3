"""Serving faults counted honestly: the load generator against a real local server (the
synthetic server, a fault injector) that drops, fails, stalls, hangs or is killed; what the
traces, the metrics and the record's status say of it."""

import asyncio
import json
import os
import signal
import sys
import time

import pandas as pd
import pytest

from llmdissect.cells import ServingCell
from llmdissect.models import ModelShape
from llmdissect.report.serving import serving_table
from llmdissect.serving.cell import load_outcome, run_serving_cell
from llmdissect.serving.engines import EngineServer, Launch, free_port
from llmdissect.serving.loadgen import (
    Arrivals,
    Endpoint,
    StreamEnd,
    Timeouts,
    incomplete,
    run_load,
)
from llmdissect.serving.metrics import serving_metrics
from llmdissect.serving.trace import RequestTrace, read_traces

SERVER = [sys.executable, "-m", "llmdissect.serving.synthetic_server"]
PROMPT = [1, 2, 3]
MAX_TOKENS = 8
QUICK = Timeouts(total_s=30.0, idle_s=30.0)  # never reached where a test does not mean to


def synthetic(tmp_path, *flags) -> EngineServer:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [*SERVER, "--port", str(port), *flags]
    launch = Launch(command, {}, base + "/health", Endpoint(base, "m"))
    return EngineServer(launch, tmp_path / "server.log", deadline_s=60)


def burst(endpoint, count, timeouts=QUICK) -> list[RequestTrace]:
    load = run_load(endpoint, [PROMPT] * count, MAX_TOKENS, Arrivals(), timeouts=timeouts)
    return asyncio.run(load)


def kinds(traces) -> list:
    return sorted(str(t.failure) for t in traces)


def assert_failures_end_and_are_named(traces):
    """Every failed request keeps its end, its kind and its message; never a bare ok."""
    for trace in traces:
        if trace.failure:
            assert not trace.ok and trace.error and trace.finished >= trace.sent
    if any(not t.ok for t in traces):
        status, reason = load_outcome(traces, max_failed_share=0.05)
        assert "failed" in reason, (status, reason)


def test_a_connection_dropped_mid_stream_is_truncated(tmp_path):
    with synthetic(tmp_path, "--drop-every", "2", "--fault-after", "3") as server:
        traces = burst(server.launch.endpoint, 4)
    assert kinds(traces) == ["None", "None", "truncated", "truncated"]
    for trace in traces:
        if not trace.ok:
            assert len(trace.chunks) == 3 and "broke after 3 tokens" in trace.error
    metrics = serving_metrics(traces)
    assert (metrics["completed"], metrics["failed"], metrics["truncated"]) == (2, 2, 2)
    assert metrics["failed_truncated"] == 2 and metrics["output_tokens"] == 2 * MAX_TOKENS
    assert_failures_end_and_are_named(traces)
    assert load_outcome(traces, 0.05) == (
        "error",
        "2 of 4 requests failed: 2 truncated; more than max_failed_share 0.05",
    )
    assert load_outcome(traces, 0.5) == (
        "ok",
        "2 of 4 requests failed: 2 truncated; within max_failed_share 0.5",
    )


def test_a_connection_dropped_after_the_finish_reason_lost_nothing(tmp_path):
    # every token and the last one's finish_reason arrived; usage and [DONE] did not
    with synthetic(tmp_path, "--drop-every", "1", "--fault-after", str(MAX_TOKENS)) as server:
        traces = burst(server.launch.endpoint, 2)
    assert all(t.ok and t.output_tokens == MAX_TOKENS for t in traces)
    assert serving_metrics(traces)["failed"] == 0


def test_http_errors_fail_with_their_status(tmp_path):
    with synthetic(tmp_path, "--fail-every", "3") as server:
        traces = burst(server.launch.endpoint, 6)
    assert kinds(traces) == ["None"] * 4 + ["http 500"] * 2
    assert all("injected failure" in t.error for t in traces if not t.ok)
    metrics = serving_metrics(traces)
    assert (metrics["completed"], metrics["failed_http_500"], metrics["truncated"]) == (4, 2, 0)
    assert_failures_end_and_are_named(traces)
    assert load_outcome(traces, 0.05)[0] == "error"


def test_a_server_killed_mid_burst_fails_the_unfinished_requests(tmp_path):
    # every 4th stream stalls after 2 tokens; once the client holds them and every other
    # request has completed, the server dies by SIGKILL: no timing race decides the counts
    traces = [RequestTrace(i, len(PROMPT), MAX_TOKENS) for i in range(64)]

    def stalled_and_rest_done() -> bool:
        return sum(t.ok for t in traces) == 48 and all(t.ok or len(t.chunks) == 2 for t in traces)

    async def burst_then_kill(server):
        prompts = [PROMPT] * len(traces)
        load = run_load(server.launch.endpoint, prompts, MAX_TOKENS, Arrivals(), timeouts=QUICK,
                        traces=traces)  # fmt: skip
        running = asyncio.create_task(load)
        await until(stalled_and_rest_done)
        os.kill(server.process.pid, signal.SIGKILL)
        await running

    with synthetic(tmp_path, "--stall-every", "4", "--fault-after", "2") as server:
        asyncio.run(burst_then_kill(server))
    assert kinds(traces) == ["None"] * 48 + ["truncated"] * 16
    assert all("broke after 2 tokens" in t.error for t in traces if not t.ok)
    metrics = serving_metrics(traces)
    assert (metrics["completed"], metrics["failed"], metrics["truncated"]) == (48, 16, 16)
    # the whole run lasts until the killed requests ended; the completed-only one not
    assert metrics["makespan_all_s"] > metrics["makespan_s"]
    assert metrics["output_tokens_per_s_all"] < metrics["output_tokens_per_s"]
    assert metrics["requests_per_s_all"] == pytest.approx(48 / metrics["makespan_all_s"])
    assert_failures_end_and_are_named(traces)
    assert load_outcome(traces, 0.05) == (
        "error",
        "16 of 64 requests failed: 16 truncated; more than max_failed_share 0.05",
    )


async def until(condition, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "the server never reached the state the test waits for"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    "flags, timeouts, chunks, message",
    [
        # accepts, reads the request and never answers: no status line, no chunk
        (["--hang"], Timeouts(total_s=30, idle_s=1), 0, "no chunk for 1 s (idle timeout)"),
        # answers, sends 2 tokens, then stays silent with the connection open
        (["--stall-every", "1", "--fault-after", "2"], Timeouts(total_s=30, idle_s=1), 2,
         "no chunk for 1 s (idle timeout)"),
        # streams on, too slowly for the total limit (20 tokens x 0.4 s)
        (["--token-delay-ms", "400"], Timeouts(total_s=1, idle_s=30), None,
         "no complete response within 1 s"),
    ],
    ids=["hung", "stalled", "slow"],
)  # fmt: skip
def test_a_silent_or_slow_server_fails_by_timeout(tmp_path, flags, timeouts, chunks, message):
    with synthetic(tmp_path, *flags) as server:
        started = time.monotonic()
        load = run_load(server.launch.endpoint, [PROMPT] * 3, 20, Arrivals(), timeouts=timeouts)
        traces = asyncio.run(load)
        assert time.monotonic() - started < 5
    assert kinds(traces) == ["timeout"] * 3
    assert all(message in t.error for t in traces)
    if chunks is not None:
        assert all(len(t.chunks) == chunks for t in traces)
    metrics = serving_metrics(traces)
    assert (metrics["completed"], metrics["failed_timeout"]) == (0, 3)
    assert "output_tokens_per_s" not in metrics and metrics["makespan_all_s"] >= 1
    assert_failures_end_and_are_named(traces)
    status, reason = load_outcome(traces, 0.05)
    assert status == "error" and reason.startswith("every request failed (3 timeout)")


def test_a_connection_closed_before_any_answer_is_a_connection_failure(tmp_path):
    with synthetic(tmp_path, "--close-every", "2") as server:
        traces = burst(server.launch.endpoint, 4)
    assert kinds(traces) == ["None", "None", "connection", "connection"]
    assert serving_metrics(traces)["failed_connection"] == 2
    assert_failures_end_and_are_named(traces)


def test_nothing_listening_is_a_connection_failure():
    nowhere = Endpoint(f"http://127.0.0.1:{free_port()}", "m")
    traces = burst(nowhere, 3)
    assert kinds(traces) == ["connection"] * 3
    assert all("Cannot connect" in t.error and not t.chunks for t in traces)
    metrics = serving_metrics(traces)
    assert (metrics["requests"], metrics["completed"], metrics["failed_connection"]) == (3, 0, 3)
    assert_failures_end_and_are_named(traces)
    # no out-of-memory text anywhere: error; the same with an OOM in the server log: oom
    assert load_outcome(traces, 1.0)[0] == "error"
    assert load_outcome(traces, 1.0, "torch.OutOfMemoryError: CUDA out of memory")[0] == "oom"


def serve_cell(tmp_path, flags, idle_timeout_s=30.0, template_keys=None, **workload_keys):
    """A whole serving cell (warm-up, burst, record) on the synthetic server as a command."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt_token_ids": PROMPT}) + "\n" for _ in range(8)))
    template = {
        "kind": "command",
        "command": [*SERVER, "--port", "{port}", *flags],
        "dtype": "float32",
        "tensor_parallel_size": 1,
        "memory_fraction": 0.9,
        "startup_timeout_s": 60,
        **(template_keys or {}),
    }
    workload = {
        "arrivals": "burst",
        "max_new_tokens": MAX_TOKENS,
        "seed": 0,
        "request_timeout_s": 30.0,
        "idle_timeout_s": idle_timeout_s,
        "max_failed_share": 0.05,
        **workload_keys,
    }
    return run_serving_cell(
        ServingCell("cpu", "tiny", "synthetic", "burst", 1),
        shape=ModelShape("tiny", 64, 2, 4, 4, 128, vocab_size=100, max_seq_len=64),
        template=template,
        workload=workload,
        model_dir=tmp_path,
        prompts_path=prompts,
        record_path=tmp_path / "record.json",
        trace_path=tmp_path / "record.trace.jsonl",
        server_log=tmp_path / "server.log",
        device_memory_gb=None,
        log=lambda line: None,
    )


def test_a_hung_engine_fails_its_cell_at_the_warm_up_within_the_idle_timeout(tmp_path):
    started = time.monotonic()
    record = serve_cell(tmp_path, ["--hang"], idle_timeout_s=1.0)
    assert time.monotonic() - started < 10
    assert record["status"] == "error"
    assert "the warm-up failed: TimeoutError: no chunk for 1 s" in record["reason"]


def test_a_cell_with_too_many_failed_requests_is_an_error_that_names_them(tmp_path):
    # the warm-up's 2 requests pass; of the 8 measured (the server's 3rd to 10th), 2 drop
    record = serve_cell(tmp_path, ["--drop-every", "4"])
    assert record["status"] == "error"
    assert record["reason"].startswith("2 of 8 requests failed: 2 truncated; more than")
    assert (record["metrics"]["completed"], record["metrics"]["truncated"]) == (6, 2)
    traces = read_traces(tmp_path / "record.trace.jsonl")
    assert kinds(traces) == ["None"] * 6 + ["truncated"] * 2


def test_the_record_status_rule():
    done = [finished(i) for i in range(61)]
    failed = [finished(61, "truncated"), finished(62, "truncated"), finished(63, "http 500")]
    assert load_outcome(done, 0.05) == ("ok", None)
    assert load_outcome(done + failed, 0.05) == (
        "ok",
        "3 of 64 requests failed: 2 truncated, 1 http 500; within max_failed_share 0.05",
    )
    status, reason = load_outcome(done[:-1] + failed + [finished(64, "timeout")], 0.05)
    assert status == "error" and reason.startswith("4 of 64 requests failed: 2 truncated, 1")
    assert load_outcome(failed, 0.05)[0] == "error"


def finished(index, failure=None) -> RequestTrace:
    trace = RequestTrace(index, 3, 2, sent=0.0, finished=1.0, chunks=[(0.5, 1), (1.0, 1)])
    if failure:
        trace.failure, trace.error = failure, f"{failure}: details"
    return trace


@pytest.mark.parametrize(
    "end, tokens, ignore_eos, problem",
    [
        (StreamEnd(done=True), 8, True, None),
        (StreamEnd(finish_reason="length"), 8, True, None),  # no [DONE]: a finish_reason will do
        (StreamEnd(), 8, True, "without [DONE] or a finish_reason"),
        (StreamEnd(done=True), 0, False, "no output tokens"),
        (StreamEnd(True, "stop"), 5, True, "5 of 8 tokens"),  # told to ignore EOS, yet stopped
        (StreamEnd(True, "stop"), 5, False, None),  # free to stop at an EOS: a wrong length
        (StreamEnd(True, "length"), 5, False, "5 of 8 tokens"),
    ],
)
def test_a_stream_completes_only_when_it_ended_properly_with_its_tokens(
    end, tokens, ignore_eos, problem
):
    found = incomplete(end, tokens, 8, ignore_eos)
    assert found == problem if problem is None else problem in found


def test_trace_files_written_before_failure_kinds_still_load(tmp_path):
    old = [
        {"index": 0, "prompt_tokens": 3, "expected_tokens": 2, "sent": 0.0, "finished": 0.4,
         "chunks": [[0.2, 1], [0.4, 1]], "reported_tokens": 2, "error": None},
        {"index": 1, "prompt_tokens": 3, "expected_tokens": 2, "sent": 0.0, "finished": None,
         "chunks": [], "reported_tokens": None, "error": "HTTP 500: boom"},
    ]  # fmt: skip
    path = tmp_path / "old.trace.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in old))
    traces = read_traces(path)
    assert traces[0].ok and traces[0].failure is None
    assert not traces[1].ok and traces[1].failure_kind == "unknown"
    metrics = serving_metrics(traces)
    assert (metrics["completed"], metrics["failed_unknown"]) == (1, 1)
    assert metrics["makespan_all_s"] == pytest.approx(0.4)  # the failure kept no end then


def test_the_serving_table_shows_completed_failed_and_truncated():
    base = {"stage": "serve", "platform": "cpu", "model": "tiny", "method": "burst",
            "world_size": 1}  # fmt: skip
    cells = pd.DataFrame(
        [
            {**base, "framework": "a", "status": "ok", "requests": 64, "completed": 61,
             "failed": 3, "truncated": 2, "token_count_mismatches": 0,
             "output_tokens_per_s": 900.0},
            {**base, "framework": "b", "status": "error", "requests": 64, "completed": 40,
             "failed": 24, "truncated": 24, "token_count_mismatches": 0,
             "output_tokens_per_s": 500.0},
            {**base, "framework": "c", "status": "oom"},  # the load never ran
        ]
    )  # fmt: skip
    table = serving_table(cells).set_index("engine")
    assert list(table.loc["a", ["requests", "failed", "truncated"]]) == ["61 of 64", "3", "2"]
    assert list(table.loc["b", ["requests", "failed", "truncated"]]) == ["40 of 64", "24", "24"]
    assert table.loc["b", "output tokens/s"] == "error"  # no throughput from an error record
    assert list(table.loc["c", ["requests", "failed", "truncated"]]) == ["OOM", "-", "-"]
    assert "J/output token" not in table.columns  # no energy counter in any record


def test_the_serving_table_shows_joules_per_output_token_where_measured():
    base = {"stage": "serve", "platform": "h200", "model": "llama2-7b", "method": "burst",
            "world_size": 1, "status": "ok", "requests": 1000, "completed": 1000}  # fmt: skip
    cells = pd.DataFrame(
        [
            {**base, "framework": "vllm", "joules_per_output_token": 0.1734},
            {**base, "framework": "other", "joules_per_output_token": None},
        ]
    )
    table = serving_table(cells).set_index("engine")
    assert list(table["J/output token"]) == ["0.173", "-"]

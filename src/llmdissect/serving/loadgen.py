"""An asyncio client that streams completions from an OpenAI-compatible server and keeps every
chunk's arrival time. It computes nothing: metrics.py reads its traces afterwards."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import numpy as np

from .trace import CONNECTION, ENGINE_ERROR, OTHER, TIMEOUT, TRUNCATED, RequestTrace

MODES = ("burst", "poisson", "concurrency")


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask: the API flavour and the body fields one engine accepts."""

    base_url: str
    model: str
    api: str = "completions"  # or "chat"
    prompt_as: str = "token_ids"  # or "text": words of the local word-level tokenizer
    ignore_eos: bool = True  # engines that reject the field get a fixed length some other way
    extra_body: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Arrivals:
    """burst: every request at once (the study); poisson: `rate` requests/s on average;
    concurrency: at most `concurrency` requests in flight."""

    mode: str = "burst"
    rate: float | None = None
    concurrency: int | None = None
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"arrival mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.mode == "poisson" and not (self.rate and self.rate > 0):
            raise ValueError("poisson arrivals need a rate above 0 requests/s")
        if self.mode == "concurrency" and not (self.concurrency and self.concurrency >= 1):
            raise ValueError("concurrency arrivals need a concurrency of at least 1")

    def send_offsets(self, count: int) -> np.ndarray:
        """Seconds after the start at which each request may be sent."""
        if self.mode != "poisson":
            return np.zeros(count)
        gaps = np.random.default_rng(self.seed).exponential(1.0 / self.rate, count)
        return np.cumsum(gaps) - gaps[0]


@dataclass(frozen=True)
class Timeouts:
    """total_s: the limit on one request; idle_s: on the wait for its next chunk (or answer)."""

    total_s: float = 3600.0
    idle_s: float = 600.0


def request_body(endpoint: Endpoint, prompt: list[int], max_tokens: int, words) -> dict:
    text = " ".join(words(t) for t in prompt) if endpoint.prompt_as == "text" else None
    body = {"model": endpoint.model, "max_tokens": max_tokens, "stream": True}
    body["stream_options"] = {"include_usage": True}
    if endpoint.api == "chat":
        body["messages"] = [{"role": "user", "content": text if text is not None else prompt}]
    else:
        body["prompt"] = text if text is not None else prompt
    if endpoint.ignore_eos:
        body["ignore_eos"] = True
    body.update(endpoint.extra_body)
    return body


def chunk_tokens(choice: dict) -> int:
    """Output tokens in one streamed choice: its token ids where the engine sends them, else one
    for a chunk that carries output (engines stream a token per chunk without speculation)."""
    if choice.get("token_ids"):
        return len(choice["token_ids"])
    delta = choice.get("delta") or {}
    has_output = choice.get("text") or delta.get("content") or delta.get("reasoning_content")
    return 1 if has_output else 0


class RequestFailed(Exception):
    """A request that did not complete: its kind (trace.py) and what happened."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class StreamEnd:
    """How a stream said it was over: `data: [DONE]`, or a choice's finish_reason."""

    done: bool = False
    finish_reason: str | None = None

    @property
    def proper(self) -> bool:
        return self.done or self.finish_reason is not None


def read_event(trace: RequestTrace, payload: dict, now: float, end: StreamEnd) -> None:
    if payload.get("error"):
        raise RequestFailed(ENGINE_ERROR, f"engine error: {payload['error']}")
    usage = payload.get("usage")
    if usage and usage.get("completion_tokens") is not None:
        trace.reported_tokens = usage["completion_tokens"]
    choices = payload.get("choices") or []
    tokens = sum(chunk_tokens(choice) for choice in choices)
    if tokens:
        trace.chunks.append((now, tokens))
    for choice in choices:
        if choice.get("finish_reason"):
            end.finish_reason = choice["finish_reason"]


def incomplete(end: StreamEnd, tokens: int, max_tokens: int, ignore_eos: bool) -> str | None:
    """Why a stream that closed without an error is still not a completed request, or None."""
    if not end.proper:
        return f"the stream ended after {tokens} tokens without [DONE] or a finish_reason"
    if tokens == 0:
        return "the response carried no output tokens"
    # an engine not told to ignore EOS may stop early; it says so with "stop" (a wrong length)
    if tokens >= max_tokens or (end.finish_reason == "stop" and not ignore_eos):
        return None
    return f"{tokens} of {max_tokens} tokens (finish_reason {end.finish_reason!r})"


async def read_stream(response, trace: RequestTrace, clock, end: StreamEnd) -> None:
    async for raw in response.content:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            end.done = True
            break
        try:
            payload = json.loads(data)
        except ValueError as error:
            raise RequestFailed(ENGINE_ERROR, f"unreadable chunk {data[:100]!r}") from error
        read_event(trace, payload, clock(), end)


async def post_and_read(session, url: str, body: dict, trace: RequestTrace, clock) -> StreamEnd:
    """Raise RequestFailed for an HTTP error or a stream that broke once the answer began;
    errors before any answer (timeouts, refused connections) pass through."""
    import aiohttp

    async with session.post(url, json=body) as response:
        if response.status != 200:
            text = (await response.text())[:300]
            raise RequestFailed(f"http {response.status}", f"HTTP {response.status}: {text}")
        end = StreamEnd()
        try:
            await read_stream(response, trace, clock, end)
        except TimeoutError:
            raise  # aiohttp's read timeout is a connection error too: still a timeout
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as error:
            if not end.proper:  # once a finish_reason came, a broken close loses nothing
                tokens = sum(n for _, n in trace.chunks)
                message = f"the stream broke after {tokens} tokens: {type(error).__name__}: {error}"
                raise RequestFailed(TRUNCATED, message) from error
        return end


def failure_of(error: Exception, timeouts: Timeouts) -> tuple[str, str]:
    """(kind, message) of what stopped a request."""
    import aiohttp

    if isinstance(error, RequestFailed):
        return error.kind, str(error)
    if isinstance(error, aiohttp.SocketTimeoutError):
        return TIMEOUT, f"TimeoutError: no chunk for {timeouts.idle_s:g} s (idle timeout)"
    if isinstance(error, TimeoutError):
        return TIMEOUT, f"TimeoutError: no complete response within {timeouts.total_s:g} s"
    if isinstance(error, (aiohttp.ClientConnectionError, OSError)):
        return CONNECTION, f"{type(error).__name__}: {error}"
    return OTHER, f"{type(error).__name__}: {error}"


async def stream_one(
    session, endpoint: Endpoint, body: dict, trace: RequestTrace, clock, timeouts: Timeouts
) -> None:
    path = "/v1/chat/completions" if endpoint.api == "chat" else "/v1/completions"
    trace.sent = clock()
    try:
        end = await post_and_read(session, endpoint.base_url + path, body, trace, clock)
        problem = incomplete(end, trace.output_tokens, body["max_tokens"], endpoint.ignore_eos)
        if problem:
            raise RequestFailed(TRUNCATED, problem)
    except Exception as error:  # a failed request is counted, never dropped
        kind, message = failure_of(error, timeouts)
        trace.failure, trace.error = kind, message[:500]
    trace.finished = clock()  # failed or not: the whole run's makespan includes failures


async def run_load(
    endpoint: Endpoint,
    prompts: list[list[int]],
    max_tokens: int,
    arrivals: Arrivals,
    words=str,
    timeouts: Timeouts = Timeouts(),
    progress=None,
    traces: list[RequestTrace] | None = None,
) -> list[RequestTrace]:
    """Send every prompt as `arrivals` says; one trace per prompt, in prompt order. `traces`,
    one per prompt, are filled in while the run goes (to watch it in flight); new by default."""
    import aiohttp

    if traces is None:
        traces = [RequestTrace(i, len(p), max_tokens) for i, p in enumerate(prompts)]
    bodies = [request_body(endpoint, p, max_tokens, words) for p in prompts]
    offsets = arrivals.send_offsets(len(prompts))
    limit = asyncio.Semaphore(arrivals.concurrency or len(prompts))
    start = time.perf_counter()

    def clock() -> float:
        return time.perf_counter() - start

    done = 0

    async def one(i: int) -> None:
        nonlocal done
        delay = offsets[i] - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        async with limit:
            await stream_one(session, endpoint, bodies[i], traces[i], clock, timeouts)
        done += 1
        if progress:
            progress(done, len(prompts))

    connector = aiohttp.TCPConnector(limit=0)  # no client-side cap on open connections
    # sock_read restarts at every byte received, headers included: the idle timeout
    timeout = aiohttp.ClientTimeout(total=timeouts.total_s, sock_read=timeouts.idle_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(one(i) for i in range(len(prompts))))
    return traces

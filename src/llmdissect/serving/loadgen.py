"""An asyncio client that streams completions from an OpenAI-compatible server and keeps every
chunk's arrival time. It computes nothing: metrics.py reads its traces afterwards."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import numpy as np

from .trace import RequestTrace

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


def read_event(trace: RequestTrace, payload: dict, now: float) -> None:
    if payload.get("error"):
        raise RuntimeError(f"engine error: {payload['error']}")
    usage = payload.get("usage")
    if usage and usage.get("completion_tokens") is not None:
        trace.reported_tokens = usage["completion_tokens"]
    tokens = sum(chunk_tokens(choice) for choice in payload.get("choices") or [])
    if tokens:
        trace.chunks.append((now, tokens))


async def stream_one(
    session, endpoint: Endpoint, body: dict, trace: RequestTrace, clock, timeout_s: float
) -> None:
    path = "/v1/chat/completions" if endpoint.api == "chat" else "/v1/completions"
    trace.sent = clock()
    try:
        async with session.post(endpoint.base_url + path, json=body) as response:
            if response.status != 200:
                text = (await response.text())[:300]
                raise RuntimeError(f"HTTP {response.status}: {text}")
            async for raw in response.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                read_event(trace, json.loads(data), clock())
        trace.finished = clock()
        if not trace.chunks:
            raise RuntimeError("the response carried no output tokens")
    except TimeoutError:
        trace.error = f"TimeoutError: no complete response within {timeout_s:.0f} s"
    except Exception as error:  # a failed request is counted, never dropped
        trace.error = f"{type(error).__name__}: {error}"[:500]


async def run_load(
    endpoint: Endpoint,
    prompts: list[list[int]],
    max_tokens: int,
    arrivals: Arrivals,
    words=str,
    timeout_s: float = 3600.0,
    progress=None,
) -> list[RequestTrace]:
    """Send every prompt as `arrivals` says; one trace per prompt, in prompt order."""
    import aiohttp

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
            await stream_one(session, endpoint, bodies[i], traces[i], clock, timeout_s)
        done += 1
        if progress:
            progress(done, len(prompts))

    connector = aiohttp.TCPConnector(limit=0)  # no client-side cap on open connections
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(one(i) for i in range(len(prompts))))
    return traces

"""A synthetic OpenAI-style streaming server: no model, tokens as fast as asked. It measures the
load generator's own ceiling, and injects faults (failed requests, short responses, dropped,
stalled or never answered streams) that a real engine cannot be made to show on demand. Never a
stand-in for an engine in a result.

Run: python -m llmdissect.serving.synthetic_server --port 8123 [--token-delay-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json


def event(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def make_app(
    token_delay_s: float = 0.0,
    fail_every: int = 0,
    short_every: int = 0,
    events_per_write: int = 1,
    drop_every: int = 0,
    stall_every: int = 0,
    fault_after: int = 2,
    hang: bool = False,
    close_every: int = 0,
):
    """Every `fail_every`-th request answers HTTP 500; every `short_every`-th stops at half its
    tokens with finish_reason "stop" (as at an EOS); every `drop_every`-th loses its connection
    after `fault_after` tokens, every `stall_every`-th stops sending after them and never ends;
    every `close_every`-th is closed before any answer; with `hang`, no request is ever answered
    (the health check still is)."""
    from aiohttp import web

    counter = itertools.count(1)

    def every(n: int, number: int) -> bool:
        return bool(n) and number % n == 0

    async def health(request):
        return web.Response(text="ok")

    async def completions(request):
        body = await request.json()
        number = next(counter)
        if hang:
            await asyncio.Event().wait()  # accepted, never answered
        if every(close_every, number):
            request.transport.close()  # read, then dropped without a status line
            return web.Response()
        if every(fail_every, number):
            return web.json_response({"error": "injected failure"}, status=500)
        tokens = int(body.get("max_tokens", 16))
        finish_reason = "length"
        if every(short_every, number):
            tokens, finish_reason = max(1, tokens // 2), "stop"
        fault_at = fault_after if every(drop_every, number) or every(stall_every, number) else None
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        pending = []
        for i in range(tokens + 1):  # one turn more: a fault may come after the last token too
            if i == fault_at:
                if pending:
                    await response.write(b"".join(pending))
                if every(drop_every, number):
                    request.transport.close()  # mid-stream, without [DONE] or a chunk's end
                    return response
                await asyncio.Event().wait()  # stalled: the connection stays open, silent
            if i == tokens:
                break
            choice = {"index": 0, "text": f" w{i}", "token_ids": [i], "finish_reason": None}
            if i == tokens - 1:
                choice["finish_reason"] = finish_reason
            pending.append(event({"choices": [choice]}))
            # several events per write: the server then costs less CPU than the client it tests
            if len(pending) >= events_per_write or i == tokens - 1:
                if token_delay_s:
                    await asyncio.sleep(token_delay_s)
                await response.write(b"".join(pending))
                pending.clear()
        usage = {"prompt_tokens": len(body.get("prompt") or []), "completion_tokens": tokens}
        await response.write(event({"choices": [], "usage": usage}) + b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_post("/v1/completions", completions)
    return app


def main() -> None:
    from aiohttp import web

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-delay-ms", type=float, default=0.0)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--short-every", type=int, default=0)
    parser.add_argument("--events-per-write", type=int, default=1)
    parser.add_argument("--drop-every", type=int, default=0)
    parser.add_argument("--stall-every", type=int, default=0)
    parser.add_argument("--fault-after", type=int, default=2, help="tokens before a drop/stall")
    parser.add_argument("--hang", action="store_true", help="never answer a completion")
    parser.add_argument("--close-every", type=int, default=0)
    args = parser.parse_args()
    app = make_app(
        args.token_delay_ms / 1000.0,
        args.fail_every,
        args.short_every,
        args.events_per_write,
        args.drop_every,
        args.stall_every,
        args.fault_after,
        args.hang,
        args.close_every,
    )
    # a deep accept queue, as production servers have: a burst of 1000 connections at once;
    # a short shutdown: stalled and hung handlers never end on their own
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
        backlog=4096,
        shutdown_timeout=1.0,
    )


if __name__ == "__main__":
    main()

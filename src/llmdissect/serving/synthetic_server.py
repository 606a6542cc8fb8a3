"""A synthetic OpenAI-style streaming server: no model, tokens as fast as asked. It measures the
load generator's own ceiling, and injects faults (failed requests, short responses) that a real
engine cannot be made to show on demand. Never a stand-in for an engine in a result.

Run: python -m llmdissect.serving.synthetic_server --port 8123 [--token-delay-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json


def make_app(
    token_delay_s: float = 0.0, fail_every: int = 0, short_every: int = 0, events_per_write: int = 1
):
    from aiohttp import web

    counter = itertools.count(1)

    async def health(request):
        return web.Response(text="ok")

    async def completions(request):
        body = await request.json()
        number = next(counter)
        if fail_every and number % fail_every == 0:
            return web.json_response({"error": "injected failure"}, status=500)
        tokens = int(body.get("max_tokens", 16))
        if short_every and number % short_every == 0:
            tokens = max(1, tokens // 2)  # a response that stops early, as at an EOS
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        pending = []
        for i in range(tokens):
            chunk = {"choices": [{"index": 0, "text": f" w{i}", "token_ids": [i]}]}
            pending.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            # several events per write: the server then costs less CPU than the client it tests
            if len(pending) >= events_per_write or i == tokens - 1:
                if token_delay_s:
                    await asyncio.sleep(token_delay_s)
                await response.write(b"".join(pending))
                pending.clear()
        usage = {"prompt_tokens": len(body.get("prompt") or []), "completion_tokens": tokens}
        await response.write(b"data: " + json.dumps({"choices": [], "usage": usage}).encode())
        await response.write(b"\n\ndata: [DONE]\n\n")
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
    args = parser.parse_args()
    app = make_app(
        args.token_delay_ms / 1000.0, args.fail_every, args.short_every, args.events_per_write
    )
    # a deep accept queue, as production servers have: a burst of 1000 connections at once
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, backlog=4096)


if __name__ == "__main__":
    main()

"""OpenAI-compatible HTTP serving shared by `magic serve judge` and `magic serve policy`.

    server.py   Server (uvicorn + Starlette, 127.0.0.1), Limits, HTTPError, JSON body reading
    openai.py   request checks (messages, prompt, sampling) and response bodies in OpenAI's shapes
    batcher.py  Batcher: one worker thread runs the model on batches of concurrent requests
    policy.py   PolicyServer: any HF causal LM (or a Policy) behind chat and text completions

The judge's server is `magic_rl.judge.serve.JudgeServer`. Reliability promises and how they are
tested: docs/serving.md.
"""

from magic_rl.serving.batcher import Batcher, Overloaded
from magic_rl.serving.server import HTTPError, Limits, Server

__all__ = ["Batcher", "HTTPError", "Limits", "Overloaded", "Server"]

"""OpenAI-compatible request handling; the engine is passed in (a fake one in unit tests).

Design decisions:
- Prompts are built with ``editflow_models.prompting`` (the same code as training): chat
  prefix = ``prefix_ids(anchor, tok, render_chat(tok, messages))``; completions prefix =
  ``prefix_ids(anchor, tok, prompt)``.
- ``n`` choices are ``n`` sequences with derived seeds ``seed_j``; the x0 of choice j is drawn
  from its own generator seeded from ``seed_j``, so a seed fixes the whole answer.
- Trace (``trace: true``): entry ``{"step": -1, "tokens", "texts"}`` is the x0 snapshot; every
  later entry ``{"step", "t", "edits": [{op, pos, token, text, old, old_text}]}`` lists one step's
  edits in the coordinates of the generated tokens before that step (see ``_trace_json``).
- Streaming: an Edit Flow rewrites text anywhere, so ``delta.content`` carries the final text
  of a choice in one append-only chunk when its CTMC finishes; meanwhile the stream sends
  ``: keep-alive`` comment lines. With ``trace: true`` chunks with an empty delta carry the new
  edit operations in ``choices[i].editflow_trace``, which never touches ``delta.content``.
- Stop strings cut the final text at the earliest match (finish_reason "stop").
- ``usage.completion_tokens`` counts generated tokens (cut at EOS, before stop strings);
  ``usage.editflow`` sums steps, forward passes and edits over the choices.
- Request-size knobs are bounded before anything is built: an x0 longer than the context left
  after the prompt, or more sequences than the engine can ever hold, is a 400 naming the field
  and the limit (429 is only for a full queue that will drain). Tokenising prompts and drawing
  x0, whose cost grows with the request, run on one worker thread (tokenizers are not safe to
  share across threads), never on the event loop.
- Fields the sampler cannot honour (``logit_bias``, penalties, audio output) are refused with a
  400 naming them unless their value is neutral; they are never accepted silently.
- Unknown fields are ignored; at most ``MAX_LOGGED_UNKNOWN`` distinct names are remembered and
  each request logs at most one line about them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from editflow_core import GenerationResult, SamplingParams, TraceStep, X0Sampler, make_x0_sampler
from editflow_models import GenerationSetup, prefix_ids, render_chat

from .engine import EngineError, SeqRequest
from .protocol import ChatCompletionRequest, CompletionRequest, ResponsesRequest
from .responses import (
    ResponseBuilder,
    UnsupportedField,
    chat_messages,
    check_responses_request,
    response_usage,
)

log = logging.getLogger("editflow_serve")

IsDisconnected = Callable[[], Awaitable[bool]]
_GOLDEN = 0x9E3779B97F4A7C15
MAX_LOGGED_UNKNOWN = 256  # distinct unknown field names remembered (and logged once each)
_SHOWN_UNKNOWN = 5  # names shown in one log line, each cut to 64 characters


class ClientDisconnected(Exception):
    """The client went away before its answer was ready (its sequences were cancelled)."""


class APIError(Exception):
    """An error answered with the OpenAI envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.headers = param, code, headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def engine_api_error(err: EngineError) -> APIError:
    """Map an engine error to its HTTP answer (429 / 503 with Retry-After, 500 on a fault)."""
    if err.status == 500:
        return APIError(500, str(err), "server_error", code="engine_fault")
    kind = "rate_limit_error" if err.status == 429 else "service_unavailable"
    return APIError(err.status, str(err), kind, headers={"Retry-After": "1"})


@dataclass
class ServeSettings:
    """Server-wide defaults; requests override the sampling ones."""

    served_model_name: str = "editflow"
    steps: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 256
    x0: str | None = None  # None: the model config's x0
    idle_stop_steps: int = 0
    keepalive_s: float = 5.0
    disconnect_poll_s: float = 0.25


@dataclass
class _Prepared:
    """A validated request: prompts (token ids), sequences to run, and how to present them."""

    prefixes: list[list[int]]
    prompt_texts: list[str]
    seqs: list[SeqRequest]
    n: int
    stop: list[str]
    echo: bool
    trace: bool


class OpenAIServing:
    """Implements the endpoints over an engine with ``state``, ``info``, ``submit``, ``cancel``."""

    def __init__(self, engine: Any, settings: ServeSettings, metrics: Any = None) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.created = int(time.time())
        self._logged_unknown: set[str] = set()
        self._token_text: dict[int, str] = {}
        # prompt encoding and x0 draws grow with the request: one thread, off the event loop
        self._prep = ThreadPoolExecutor(max_workers=1, thread_name_prefix="editflow-prep")

    # ---------------------------------------------------------------- models / health
    def model_card(self) -> dict[str, Any]:
        return {
            "id": self.settings.served_model_name,
            "object": "model",
            "created": self.created,
            "owned_by": "editflow",
        }

    def list_models(self) -> dict[str, Any]:
        return {"object": "list", "data": [self.model_card()]}

    def get_model(self, model_id: str) -> dict[str, Any]:
        if model_id != self.settings.served_model_name:
            raise APIError(
                404, f"The model {model_id!r} does not exist", param="model", code="model_not_found"
            )
        return self.model_card()

    def health(self) -> tuple[int, dict[str, Any]]:
        state = self.engine.state
        if state == "ready":
            return 200, {"status": "ok"}
        msg = {"loading": "loading the model", "draining": "shutting down"}.get(
            state, getattr(self.engine, "error", None) or state
        )
        return 503, {"status": state, **APIError(503, msg, "service_unavailable").body()}

    # ---------------------------------------------------------------- endpoints
    async def chat(
        self, req: ChatCompletionRequest, is_disconnected: IsDisconnected | None = None
    ) -> dict[str, Any] | AsyncIterator[str]:
        """POST /v1/chat/completions: a response dict, or SSE lines when ``req.stream``."""
        self._check_common(req)
        if req.modalities is not None and set(req.modalities) != {"text"}:
            raise _not_honoured("modalities", 'Edit Flow models only write text; use ["text"]')
        if req.audio is not None:
            raise _not_honoured("audio", "Edit Flow models only write text; omit audio")
        if req.logprobs or req.top_logprobs is not None:
            raise APIError(400, "logprobs are not supported by Edit Flow models", param="logprobs")
        if req.response_format is not None and req.response_format.get("type", "text") != "text":
            raise APIError(
                400, "only response_format type 'text' is supported", param="response_format"
            )
        if req.tools:
            raise APIError(400, "tools are not supported", param="tools")
        info = self._info()
        self._check_capacity(req.n, 1)
        messages = [
            {"role": "system" if m.role == "developer" else m.role, "content": _text(m.content)}
            for m in req.messages
        ]
        max_new = req.max_completion_tokens or req.max_tokens
        prep = await self._off_loop(self.prepare_chat, req, info, messages, max_new)
        return await self._run(prep, req, chat=True, is_disconnected=is_disconnected)

    def prepare_chat(
        self,
        req: ChatCompletionRequest | ResponsesRequest,
        info: GenerationSetup,
        messages: list[dict[str, str]],
        max_new: int | None,
    ) -> _Prepared:
        """Render and encode ``messages`` ({"role", "content"}), then build the sequences."""
        try:
            prompt = render_chat(info.tokenizer, messages)
        except Exception as err:  # noqa: BLE001 (a template may reject any message list)
            raise APIError(
                400, f"the chat template rejected the messages: {err}", param="messages"
            ) from None
        prefix = prefix_ids(info.anchor_token_id, info.tokenizer, prompt)
        return self._prepare(req, info, [prefix], [prompt], max_new, "messages", echo=False)

    async def completions(
        self, req: CompletionRequest, is_disconnected: IsDisconnected | None = None
    ) -> dict[str, Any] | AsyncIterator[str]:
        """POST /v1/completions: a response dict, or SSE lines when ``req.stream``."""
        self._check_common(req)
        if req.logprobs is not None:
            raise APIError(400, "logprobs are not supported by Edit Flow models", param="logprobs")
        if req.suffix:
            raise APIError(400, "suffix is not supported", param="suffix")
        if req.best_of is not None and req.best_of != req.n:
            raise APIError(400, "best_of other than n is not supported", param="best_of")
        info = self._info()
        prompts = "" if req.prompt is None else req.prompt
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        if len(prompts) * req.n > 64:
            raise APIError(400, "at most 64 choices (prompts x n) per request", param="prompt")
        self._check_capacity(req.n, len(prompts))
        prep = await self._off_loop(self._prepare_completions, req, info, prompts)
        return await self._run(prep, req, chat=False, is_disconnected=is_disconnected)

    def _prepare_completions(
        self, req: CompletionRequest, info: GenerationSetup, prompts: list[str | list[int]]
    ) -> _Prepared:
        prefixes, texts = [], []
        for p in prompts:
            if isinstance(p, str):
                prefixes.append(prefix_ids(info.anchor_token_id, info.tokenizer, p))
                texts.append(p)
            else:
                if any(not 0 <= t < info.vocab_size for t in p):
                    raise APIError(
                        400, f"token ids must be in [0, {info.vocab_size})", param="prompt"
                    )
                prefixes.append([info.anchor_token_id, *p])
                texts.append(info.tokenizer.decode(p))
        return self._prepare(req, info, prefixes, texts, req.max_tokens, "prompt", echo=req.echo)

    async def responses(
        self, req: ResponsesRequest, is_disconnected: IsDisconnected | None = None
    ) -> dict[str, Any] | AsyncIterator[str]:
        """POST /v1/responses (text subset): a Response dict, or SSE events when ``req.stream``."""
        self.check_request(req)
        try:
            check_responses_request(req)
        except UnsupportedField as err:
            raise _not_honoured(err.param, str(err)) from None
        info = self._info()
        messages = chat_messages(req)
        prep = await self._off_loop(self.prepare_chat, req, info, messages, req.max_output_tokens)
        params = prep.seqs[0].params
        builder = ResponseBuilder(
            req, self.settings.served_model_name, params.temperature, params.top_p
        )
        try:
            [(key, fut)] = self.engine.submit(prep.seqs)
        except EngineError as err:
            raise engine_api_error(err) from None
        if req.stream:
            return self._response_events(prep, key, fut, builder)
        try:
            await self._await_all([fut], is_disconnected)
        except BaseException:
            self.engine.cancel([key])
            raise
        try:
            res = fut.result()
        except EngineError as err:
            raise engine_api_error(err) from None
        text, reason = self._finish(prep, 0, res)
        usage = response_usage(self._usage(prep, [res]))
        return builder.response(builder.status(reason), text, usage)

    async def _response_events(
        self, prep: _Prepared, key: int, fut: asyncio.Future, builder: ResponseBuilder
    ) -> AsyncIterator[str]:
        finished = False
        try:
            for event in builder.start_events():
                yield event
            while not fut.done():
                try:
                    await asyncio.wait_for(asyncio.shield(fut), self.settings.keepalive_s)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                except EngineError:
                    pass
            finished = True
            err = fut.exception()
            if err is not None:
                yield builder.failed_event("server_error", str(err))
                return
            res = fut.result()
            text, reason = self._finish(prep, 0, res)
            for event in builder.final_events(text, reason, self._usage(prep, [res])):
                yield event
        finally:
            if not finished:
                self.engine.cancel([key])

    # ---------------------------------------------------------------- preparation
    def _check_common(self, req: ChatCompletionRequest | CompletionRequest) -> None:
        self.check_request(req)
        if req.stream_options is not None and not req.stream:
            raise APIError(
                400, "stream_options is only allowed when stream is true", param="stream_options"
            )
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(req, name):
                raise _not_honoured(name, f"the Edit Flow sampler has no penalties; omit {name}")
        if req.logit_bias:
            raise _not_honoured("logit_bias", "the Edit Flow sampler has no logit bias")

    def check_request(self, req: EditFlowRequest) -> None:
        """Log unknown fields (bounded); 404 for another model; x0 and mask_length exclusive."""
        self._log_unknown(list(req.model_extra or {}))
        if req.model is not None and req.model != self.settings.served_model_name:
            raise APIError(
                404,
                f"The model {req.model!r} does not exist",
                param="model",
                code="model_not_found",
            )
        if req.x0 is not None and req.mask_length is not None:
            raise APIError(400, "give x0 or mask_length, not both", param="x0")

    def _log_unknown(self, keys: list[str]) -> None:
        """One warning line per request at most, naming a few new unknown fields."""
        room = MAX_LOGGED_UNKNOWN - len(self._logged_unknown)
        if not keys or room <= 0:
            return
        new = [k for k in keys if k not in self._logged_unknown][:room]
        if not new:
            return
        self._logged_unknown.update(new)
        shown = ", ".join(repr(k[:64]) for k in new[:_SHOWN_UNKNOWN])
        more = f" and {len(new) - _SHOWN_UNKNOWN} more" if len(new) > _SHOWN_UNKNOWN else ""
        full = " (no more are logged)" if len(self._logged_unknown) >= MAX_LOGGED_UNKNOWN else ""
        log.warning("ignoring unknown request fields %s%s%s", shown, more, full)

    def _check_capacity(self, n: int, prompts: int) -> None:
        """400 for a request with more sequences than the engine can ever hold (not 429)."""
        need, capacity = n * prompts, self.engine.capacity
        if need > capacity:
            what = f"n={n}" if prompts == 1 else f"n={n} x {prompts} prompts"
            raise APIError(
                400,
                f"this request needs {need} sequences ({what}) but this server holds at most "
                f"{capacity} at once (running + queued); lower n or split the request",
                param="n",
            )

    async def _off_loop(self, fn: Callable[..., _Prepared], *args: Any) -> _Prepared:
        """Run ``fn(*args)`` on the preparation thread."""
        return await asyncio.get_running_loop().run_in_executor(self._prep, fn, *args)

    def _info(self) -> GenerationSetup:
        if self.engine.state != "ready" or self.engine.info is None:
            status, body = self.health()
            raise APIError(
                503, body["error"]["message"], "service_unavailable", headers={"Retry-After": "1"}
            )
        return self.engine.info

    def _prepare(
        self,
        req: ChatCompletionRequest | CompletionRequest,
        info: GenerationSetup,
        prefixes: list[list[int]],
        texts: list[str],
        max_new: int | None,
        prompt_param: str,
        echo: bool,
    ) -> _Prepared:
        s = self.settings
        spec = req.x0 if req.x0 is not None else s.x0 or str(info.x0)
        if req.mask_length is not None:
            spec = f"masks[length:{req.mask_length}]" if req.mask_length else "empty"
        x0_param = "mask_length" if req.mask_length is not None else "x0"
        try:
            x0_sampler = make_x0_sampler(spec)
        except ValueError as err:
            raise APIError(400, str(err), param=x0_param) from None
        longest = max(map(len, prefixes))
        if longest >= info.max_length:
            raise APIError(
                400,
                f"the prompt is {longest} tokens; this model's context is {info.max_length}",
                param=prompt_param,
                code="context_length_exceeded",
            )
        if req.x0 is not None or req.mask_length is not None:  # the server's default is cut
            _check_x0_fits(x0_sampler, info.max_length, longest, x0_param)
        if x0_sampler.kind == "masks" and info.mask_token_id is None:
            raise APIError(
                400, "this model has no mask token; use x0 'empty' or 'uniform[...]'", param="x0"
            )
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        if any(not x for x in stop):
            raise APIError(400, "stop strings must not be empty", param="stop")
        top_p = s.top_p if req.top_p is None else req.top_p
        temperature = s.temperature if req.temperature is None else req.temperature
        if top_p <= 0:  # OpenAI allows 0: keep only the most likely token
            top_p, temperature = 1.0, 0.0
        base_seed = req.seed if req.seed is not None else secrets.randbits(63)
        seqs = []
        for prefix in prefixes:
            room = info.max_length - len(prefix)
            budget = min(max_new or s.max_tokens, room)
            for j in range(req.n):
                seed = (base_seed + j * _GOLDEN) % 2**63
                gen = torch.Generator().manual_seed(seed ^ 0x5DEECE66D)
                x0 = x0_sampler.sample(
                    gen,
                    mask_token_id=info.mask_token_id,
                    vocab_size=info.vocab_size,
                    exclude_ids=info.banned_token_ids,
                ).tolist()[:budget]
                params = SamplingParams(
                    steps=req.steps or s.steps,
                    temperature=temperature,
                    top_k=s.top_k if req.top_k is None else req.top_k,
                    top_p=top_p,
                    max_new_tokens=budget,
                    seed=seed,
                    trace=req.trace,
                    idle_stop_steps=s.idle_stop_steps
                    if req.idle_stop_steps is None
                    else req.idle_stop_steps,
                    guidance_scale=req.guidance_scale or 0.0,
                )
                seqs.append(SeqRequest(prefix, x0, params))
        return _Prepared(prefixes, texts, seqs, req.n, stop, echo, req.trace)

    # ---------------------------------------------------------------- running
    async def _run(
        self,
        prep: _Prepared,
        req: ChatCompletionRequest | CompletionRequest,
        chat: bool,
        is_disconnected: IsDisconnected | None,
    ) -> dict[str, Any] | AsyncIterator[str]:
        events: asyncio.Queue = asyncio.Queue()
        on_trace = (lambda i, steps: events.put_nowait(("trace", i, steps))) if prep.trace else None
        try:
            handles = self.engine.submit(prep.seqs, on_trace)
        except EngineError as err:
            raise engine_api_error(err) from None
        keys = [k for k, _ in handles]
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        if req.stream:
            for i, (_, fut) in enumerate(handles):
                fut.add_done_callback(lambda f, i=i: events.put_nowait(("done", i, f)))
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return self._stream(prep, keys, events, rid, chat, include_usage)
        futs = [f for _, f in handles]
        try:
            await self._await_all(futs, is_disconnected)
        except BaseException:
            self.engine.cancel(keys)
            raise
        try:
            results = [f.result() for f in futs]
        except EngineError as err:
            raise engine_api_error(err) from None
        return self._response(prep, results, rid, chat)

    async def _await_all(
        self, futs: list[asyncio.Future], is_disconnected: IsDisconnected | None
    ) -> None:
        pending = set(futs)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=self.settings.disconnect_poll_s)
            if pending and is_disconnected is not None and await is_disconnected():
                raise ClientDisconnected()

    def _finish(self, prep: _Prepared, c: int, res: GenerationResult) -> tuple[str, str]:
        """The final text and finish_reason of choice ``c``."""
        info = self.engine.info
        text = info.tokenizer.decode(res.completion, skip_special_tokens=True)
        reason = res.finish_reason
        cuts = [text.find(s) for s in prep.stop if s in text]
        if cuts:
            text, reason = text[: min(cuts)], "stop"
        if prep.echo:
            text = prep.prompt_texts[c // prep.n] + text
        return text, reason

    def _usage(self, prep: _Prepared, results: list[GenerationResult]) -> dict[str, Any]:
        prompt = sum(len(p) for p in prep.prefixes)
        completion = sum(len(r.completion) for r in results)
        if self.metrics is not None:
            self.metrics.prompt_tokens.inc(prompt)
            self.metrics.completion_tokens.inc(completion)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "editflow": {
                "steps": sum(r.steps for r in results),
                "forward_passes": sum(r.forward_passes for r in results),
                "insertions": sum(r.n_ins for r in results),
                "deletions": sum(r.n_del for r in results),
                "substitutions": sum(r.n_sub for r in results),
            },
        }

    def _response(
        self, prep: _Prepared, results: list[GenerationResult], rid: str, chat: bool
    ) -> dict[str, Any]:
        choices = []
        for c, res in enumerate(results):
            text, reason = self._finish(prep, c, res)
            if chat:
                choice = {
                    "index": c,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": reason,
                }
            else:
                choice = {"index": c, "text": text, "logprobs": None, "finish_reason": reason}
            if prep.trace:
                choice["editflow_trace"] = [
                    self._snapshot(prep.seqs[c]),
                    *self._trace_json(res.trace or [], len(prep.seqs[c].prefix)),
                ]
            choices.append(choice)
        return {
            "id": rid,
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": self.settings.served_model_name,
            "choices": choices,
            "usage": self._usage(prep, results),
        }

    async def _stream(
        self,
        prep: _Prepared,
        keys: list[int],
        events: asyncio.Queue,
        rid: str,
        chat: bool,
        include_usage: bool,
    ) -> AsyncIterator[str]:
        created = int(time.time())
        head = {
            "id": rid,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": self.settings.served_model_name,
        }
        if include_usage:
            head["usage"] = None

        def chunk(
            c: int,
            delta: dict[str, Any] | None = None,
            text: str = "",
            finish: str | None = None,
            **extra: Any,
        ) -> str:
            if chat:
                choice = {
                    "index": c,
                    "delta": delta or {},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            else:
                choice = {"index": c, "text": text, "logprobs": None, "finish_reason": finish}
            return _sse({**head, "choices": [{**choice, **extra}]})

        total = len(prep.seqs)
        results: list[GenerationResult | None] = [None] * total
        left = total
        try:
            for c in range(total):
                if chat:
                    yield chunk(c, {"role": "assistant", "content": ""})
                if prep.trace:
                    yield chunk(c, editflow_trace=[self._snapshot(prep.seqs[c])])
            while left:
                try:
                    kind, c, payload = await asyncio.wait_for(
                        events.get(), self.settings.keepalive_s
                    )
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if kind == "trace":
                    steps = self._trace_json(payload, len(prep.seqs[c].prefix))
                    if steps:
                        yield chunk(c, editflow_trace=steps)
                    continue
                if payload.cancelled():
                    continue
                err = payload.exception()
                if err is not None:
                    api = (
                        engine_api_error(err)
                        if isinstance(err, EngineError)
                        else APIError(500, str(err), "server_error")
                    )
                    yield _sse(api.body())
                    yield "data: [DONE]\n\n"
                    return
                res = results[c] = payload.result()
                left -= 1
                text, reason = self._finish(prep, c, res)
                if text:
                    yield chunk(c, {"content": text}, text=text)
                yield chunk(c, finish=reason)
            if include_usage:
                yield _sse({**head, "choices": [], "usage": self._usage(prep, results)})
            yield "data: [DONE]\n\n"
        finally:
            if left:
                self.engine.cancel(keys)

    def _snapshot(self, seq: SeqRequest) -> dict[str, Any]:
        """The first trace entry of a choice: its x0 tokens (the state at t = 0)."""
        return {"step": -1, "t": 0.0, "tokens": seq.x0, "texts": [self._text(t) for t in seq.x0]}

    def _trace_json(self, steps: list[TraceStep], frozen: int) -> list[dict[str, Any]]:
        """Trace steps with edits, positions relative to the first generated token.

        ``ins`` inserts ``token`` after ``pos`` (-1: at the start); ``del`` removes ``pos``;
        ``sub`` replaces ``pos``; ``text`` / ``old_text`` are the tokens' decoded strings.
        """
        out = []
        for s in steps:
            if not s.edits:
                continue
            edits = [
                {
                    "op": e.op,
                    "pos": e.pos - frozen,
                    "token": e.token,
                    "text": self._text(e.token),
                    "old": e.old,
                    "old_text": self._text(e.old),
                }
                for e in s.edits
            ]
            out.append({"step": s.step, "t": round(s.t, 6), "edits": edits})
        return out

    def _text(self, token: int | None) -> str | None:
        if token is None:
            return None
        text = self._token_text.get(token)
        if text is None:
            text = self._token_text[token] = self.engine.info.tokenizer.decode([token])
        return text


EditFlowRequest = ChatCompletionRequest | CompletionRequest | ResponsesRequest


def _text(content: str | list[Any] | None) -> str:
    """A message's content as one string (text parts joined by newlines; null: empty)."""
    if isinstance(content, list):
        return "\n".join(p.text for p in content)
    return content or ""


def _not_honoured(param: str, why: str) -> APIError:
    return APIError(
        400, f"{param} is not supported: {why}", param=param, code="unsupported_parameter"
    )


def _check_x0_fits(sampler: X0Sampler, context: int, prompt: int, param: str) -> None:
    """400 naming ``param`` when x0 could be longer than the context left after the prompt.

    Checked on the spec, before any x0 token is drawn (a Poisson mean counts as its length).
    """
    longest = sampler.mean if sampler.mean is not None else sampler.max_length
    room = context - prompt
    if longest > room:
        raise APIError(
            400,
            f"{param} asks for an x0 of up to {longest:g} tokens, but this model's context of "
            f"{context} tokens leaves {room} after the {prompt}-token prompt; use at most {room}",
            param=param,
            code="context_length_exceeded",
        )


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n"

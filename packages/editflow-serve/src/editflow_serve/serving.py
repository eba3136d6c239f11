"""OpenAI-compatible request handling over an ``EngineClient`` (a fake one in unit tests).

The request models map themselves onto the sampler and the answer models shape the replies
(``protocol.py``); trace entries are ``trace.py``'s. What is left here is what needs the server:
the model name, the engine's state and capacity, the tokenizer and context, running the
sequences and waiting for them.

Design decisions:
- Prompts are built with ``editflow_models``' prompting (the same code as training): chat
  prefix = ``prefix_ids(anchor, tok, render_chat(tok, messages))``; completions prefix =
  ``prefix_ids(anchor, tok, prompt)``.
- ``n`` choices are ``n`` sequences with derived seeds (``choice_seeds``); the x0 of a choice is
  drawn from its own generator seeded from its seed, so a seed fixes the whole answer.
- Streaming: an Edit Flow rewrites text anywhere, so ``delta.content`` carries the final text
  of a choice in one append-only chunk when its CTMC finishes; meanwhile the stream sends
  ``: keep-alive`` comment lines. With ``trace: true`` chunks with an empty delta carry the new
  edit operations in ``choices[i].editflow_trace``, which never touches ``delta.content``. The
  whole answer and the stream are built by the same shape object from the same final choices.
- Stop strings cut the final text at the earliest match (finish_reason "stop").
- ``usage.completion_tokens`` counts generated tokens (cut at EOS, before stop strings);
  ``usage.editflow`` sums steps, forward passes and edits over the choices.
- Request-size knobs are bounded before anything is built: an x0 longer than the context left
  after the prompt, or more sequences than the engine can ever hold, is a 400 naming the field
  and the limit (429 is only for a full queue that will drain). Tokenising prompts and drawing
  x0, whose cost grows with the request, run on one worker thread (tokenizers are not safe to
  share across threads), never on the event loop.
- Fields the sampler cannot honour (``logit_bias``, penalties, audio output) are refused with a
  400 naming them unless their value is neutral (the request models' ``check_supported``);
  they are never accepted silently.
- Unknown fields are ignored; at most ``MAX_LOGGED_UNKNOWN`` distinct names are remembered and
  each request logs at most one line about them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from editflow_core import GenerationResult, X0Sampler, make_x0_sampler
from editflow_models import GenerationSetup, encode_text, prefix_ids, render_chat

from .engine_client import EngineClient, EngineError, SeqRequest
from .errors import APIError, ClientDisconnected, engine_api_error, invalid
from .metrics import Metrics
from .protocol import (
    SSE_DONE,
    SSE_KEEPALIVE,
    ChatCompletionRequest,
    ChatCompletionShape,
    CompletionRequest,
    CompletionShape,
    FinalChoice,
    ResponsesRequest,
    Usage,
    answer_json,
    sse,
)
from .responses import ResponseBuilder, response_usage
from .settings import ServeSettings
from .trace import TraceJSON

__all__ = [
    "APIError",
    "ClientDisconnected",
    "EditFlowRequest",
    "IsDisconnected",
    "OpenAIServing",
    "ServeSettings",
]

log = logging.getLogger("editflow_serve")

IsDisconnected = Callable[[], Awaitable[bool]]
EditFlowRequest = ChatCompletionRequest | CompletionRequest | ResponsesRequest
Shape = ChatCompletionShape | CompletionShape
MAX_LOGGED_UNKNOWN = 256  # distinct unknown field names remembered (and logged once each)
_SHOWN_UNKNOWN = 5  # names shown in one log line, each cut to 64 characters
MAX_CHOICES = 64  # prompts x n of one completions request

T = TypeVar("T")


@dataclass
class _Prepared:
    """A validated request: prompts (token ids), sequences to run, and how to present them."""

    setup: GenerationSetup
    prefixes: list[list[int]]
    prompt_texts: list[str]
    seqs: list[SeqRequest]
    n: int
    stop: list[str]
    echo: bool
    trace: bool
    draft_tokens: int | None = None  # a chat prediction's length (accepted / rejected counts)


class OpenAIServing:
    """The endpoints' logic over an ``EngineClient``; ``settings`` gives the server defaults."""

    def __init__(
        self, engine: EngineClient, settings: ServeSettings, metrics: Metrics | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.created = int(time.time())
        self._logged_unknown: set[str] = set()
        self._trace: TraceJSON | None = None
        # prompt encoding and x0 draws grow with the request: one thread, off the event loop
        self._prep = ThreadPoolExecutor(max_workers=1, thread_name_prefix="editflow-prep")

    # ---------------------------------------------------------------- models / health
    def model_card(self) -> dict[str, Any]:
        """The served model as an OpenAI model object.

        Plus ``editflow``: what its sampler offers (``reverse_rates``, which ``correction``
        needs), once the model is loaded; null before.
        """
        setup = self.engine.setup
        features = None if setup is None else {"reverse_rates": setup.has_reverse_rates}
        return {
            "id": self.settings.model_id,
            "object": "model",
            "created": self.created,
            "owned_by": "editflow",
            "editflow": features,
        }

    def list_models(self) -> dict[str, Any]:
        """``GET /v1/models``: a list of the one served model."""
        return {"object": "list", "data": [self.model_card()]}

    def get_model(self, model_id: str) -> dict[str, Any]:
        """``GET /v1/models/{model_id}``: the model card, or a 404 ``APIError``."""
        if model_id != self.settings.model_id:
            raise _no_such_model(model_id)
        return self.model_card()

    def health(self) -> tuple[int, dict[str, Any]]:
        """``GET /health``: 200 when ready, else 503 with what the engine is doing."""
        state = self.engine.state
        if state == "ready":
            return 200, {"status": "ok"}
        msg = {"loading": "loading the model", "draining": "shutting down"}.get(
            state, self.engine.error or state
        )
        return 503, {"status": state, **APIError(503, msg, "service_unavailable").body()}

    # ---------------------------------------------------------------- endpoints
    async def chat(
        self, req: ChatCompletionRequest, is_disconnected: IsDisconnected | None = None
    ) -> dict[str, Any] | AsyncIterator[str]:
        """POST /v1/chat/completions: a response dict, or SSE lines when ``req.stream``."""
        self.check_request(req)
        setup = self._setup()
        self._check_capacity(req.n, 1)
        prep = await self._off_loop(self.prepare_chat, req, setup)
        shape = ChatCompletionShape(self.settings.model_id, req.include_usage)
        return await self._run(prep, req.stream, shape, is_disconnected)

    async def completions(
        self, req: CompletionRequest, is_disconnected: IsDisconnected | None = None
    ) -> dict[str, Any] | AsyncIterator[str]:
        """POST /v1/completions: a response dict, or SSE lines when ``req.stream``."""
        self.check_request(req)
        setup = self._setup()
        prompts = req.prompt_list()
        if len(prompts) * req.n > MAX_CHOICES:
            raise invalid("prompt", f"at most {MAX_CHOICES} choices (prompts x n) per request")
        self._check_capacity(req.n, len(prompts))
        prep = await self._off_loop(self.prepare_completions, req, setup, prompts)
        shape = CompletionShape(self.settings.model_id, req.include_usage)
        return await self._run(prep, req.stream, shape, is_disconnected)

    async def responses(
        self, req: ResponsesRequest, is_disconnected: IsDisconnected | None = None
    ) -> dict[str, Any] | AsyncIterator[str]:
        """POST /v1/responses (text subset): a Response dict, or SSE events when ``req.stream``."""
        self.check_request(req)
        setup = self._setup()
        prep = await self._off_loop(self.prepare_chat, req, setup)
        params = prep.seqs[0].params
        builder = ResponseBuilder(req, self.settings.model_id, params.temperature, params.top_p)
        [(key, fut)] = self._submit(prep)
        if req.stream:
            return self._response_events(prep, key, fut, builder)
        [res] = await self._results(prep, [key], [fut], is_disconnected)
        final = self._final(prep, 0, res)
        usage = response_usage(self._usage(prep, [res]))
        return builder.response(builder.status(final.finish_reason), final.text, usage)

    # ---------------------------------------------------------------- checks
    def check_request(self, req: EditFlowRequest) -> None:
        """Log unknown fields (bounded); 404 for another model; 400 for what is not honoured."""
        self._log_unknown(list(req.model_extra or {}))
        if req.model is not None and req.model != self.settings.model_id:
            raise _no_such_model(req.model)
        req.check_supported()

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
            raise invalid(
                "n",
                f"this request needs {need} sequences ({what}) but this server holds at most "
                f"{capacity} at once (running + queued); lower n or split the request",
            )

    def _setup(self) -> GenerationSetup:
        """The engine's loaded model, or 503 (with Retry-After) while it has none."""
        setup = self.engine.setup
        if self.engine.state != "ready" or setup is None:
            status, body = self.health()
            raise APIError(
                503, body["error"]["message"], "service_unavailable", headers={"Retry-After": "1"}
            )
        return setup

    # ---------------------------------------------------------------- preparation
    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the preparation thread."""
        return await asyncio.get_running_loop().run_in_executor(self._prep, fn, *args)

    def prepare_chat(
        self, req: ChatCompletionRequest | ResponsesRequest, setup: GenerationSetup
    ) -> _Prepared:
        """Render and encode the request's chat messages, then build the sequences."""
        try:
            prompt = render_chat(setup.tokenizer, req.chat_messages())
        except Exception as err:  # noqa: BLE001 (a template may reject any message list)
            raise invalid("messages", f"the chat template rejected the messages: {err}") from None
        prefix = prefix_ids(setup.anchor_token_id, setup.tokenizer, prompt)
        draft = req.draft() if isinstance(req, ChatCompletionRequest) else None
        return self._prepare(req, setup, [prefix], [prompt], "messages", echo=False, draft=draft)

    def prepare_completions(
        self, req: CompletionRequest, setup: GenerationSetup, prompts: list[str | list[int]]
    ) -> _Prepared:
        """Encode the prompts (text, or token ids checked against the vocabulary)."""
        prefixes, texts = [], []
        for p in prompts:
            if isinstance(p, str):
                prefixes.append(prefix_ids(setup.anchor_token_id, setup.tokenizer, p))
                texts.append(p)
            else:
                if any(not 0 <= t < setup.vocab_size for t in p):
                    raise invalid("prompt", f"token ids must be in [0, {setup.vocab_size})")
                prefixes.append([setup.anchor_token_id, *p])
                texts.append(setup.tokenizer.decode(p))
        return self._prepare(
            req, setup, prefixes, texts, "prompt", echo=req.echo, suffix=req.suffix
        )

    def _prepare(
        self,
        req: EditFlowRequest,
        setup: GenerationSetup,
        prefixes: list[list[int]],
        texts: list[str],
        prompt_param: str,
        echo: bool,
        suffix: str | None = None,
        draft: str | None = None,
    ) -> _Prepared:
        """Check the prompts, x0, suffix and draft against the context; one sequence per choice.

        One sequence per prompt x choice (``GenerationSetup.start``: the same x0 for a seed as
        the CLI).
        """
        s = self.settings
        if req.correction and not setup.has_reverse_rates:
            raise invalid(
                "correction",
                "correction needs a model trained with reverse_rates; this model has no reverse "
                "rates (omit correction or send 0)",
            )
        asked = req.x0_request()
        spec, x0_param = asked if asked is not None else (s.x0 or str(setup.x0), "x0")
        try:
            x0_sampler = make_x0_sampler(spec)
        except ValueError as err:
            raise invalid(x0_param, str(err)) from None
        longest = max(map(len, prefixes))
        if longest >= setup.max_length:
            raise invalid(
                prompt_param,
                f"the prompt is {longest} tokens; this model's context is {setup.max_length}",
                code="context_length_exceeded",
            )
        if asked is not None:  # the server's default is cut to the token budget instead
            _check_x0_fits(x0_sampler, setup.max_length, longest, x0_param)
        if x0_sampler.kind == "masks" and setup.mask_token_id is None:
            raise invalid("x0", "this model has no mask token; use x0 'empty' or 'uniform[...]'")
        stop = req.stop_strings()
        seeds = req.choice_seeds()
        max_new = req.max_new_tokens()
        draft_ids = encode_text(setup.tokenizer, draft) if draft is not None else None
        suffix_ids = encode_text(setup.tokenizer, suffix) if suffix is not None else None
        seqs = []
        for prefix in prefixes:
            starts = [
                setup.start(prefix, seed, draft=draft_ids, suffix=suffix_ids, x0_sampler=x0_sampler)
                for seed in seeds
            ]
            given = len(prefix) + len(starts[0].suffix)
            room = setup.max_length - given
            if room < 1:
                param = "suffix" if suffix is not None else "prediction"
                raise invalid(
                    param,
                    f"the prompt and suffix take {given} of this model's {setup.max_length} "
                    "tokens, leaving no room to write",
                    code="context_length_exceeded",
                )
            default = s.max_tokens if draft_ids is None else max(s.max_tokens, 2 * len(draft_ids))
            budget = min(max_new or default, room)
            if draft_ids is not None and len(draft_ids) > budget:
                limit = "max_tokens" if max_new else "the context"
                raise invalid(
                    "prediction",
                    f"the prediction is {len(draft_ids)} tokens, more than the {budget} this "
                    f"answer may hold ({limit}); shorten it or raise max_completion_tokens",
                )
            for seed, start in zip(seeds, starts):
                if not start.draft:  # the model's x0 is cut to the token budget
                    start.x0 = start.x0[:budget]
                params = req.sampling_params(s, max_new_tokens=budget, seed=seed)
                seqs.append(SeqRequest(start.prefix, start.x0, params, start.suffix))
        n_draft = len(draft_ids) if draft_ids is not None else None
        return _Prepared(setup, prefixes, texts, seqs, req.n, stop, echo, req.trace, n_draft)

    # ---------------------------------------------------------------- running
    def _submit(self, prep: _Prepared, on_trace: Any = None) -> list[tuple[int, asyncio.Future]]:
        try:
            return self.engine.submit(prep.seqs, on_trace)
        except EngineError as err:
            raise engine_api_error(err) from None

    async def _results(
        self,
        prep: _Prepared,
        keys: list[int],
        futs: list[asyncio.Future],
        is_disconnected: IsDisconnected | None,
    ) -> list[GenerationResult]:
        """Wait for every sequence (cancelling them all if the client goes away)."""
        pending = set(futs)
        try:
            while pending:
                _, pending = await asyncio.wait(pending, timeout=self.settings.disconnect_poll)
                if pending and is_disconnected is not None and await is_disconnected():
                    raise ClientDisconnected()
        except BaseException:
            self.engine.cancel(keys)
            raise
        try:
            return [f.result() for f in futs]
        except EngineError as err:
            raise engine_api_error(err) from None

    async def _run(
        self,
        prep: _Prepared,
        stream: bool,
        shape: Shape,
        is_disconnected: IsDisconnected | None,
    ) -> dict[str, Any] | AsyncIterator[str]:
        """Run a chat / text completion: the whole answer, or its SSE stream."""
        events: asyncio.Queue = asyncio.Queue()
        on_trace = (lambda i, steps: events.put_nowait(("trace", i, steps))) if prep.trace else None
        handles = self._submit(prep, on_trace)
        keys = [k for k, _ in handles]
        if stream:
            for i, (_, fut) in enumerate(handles):
                fut.add_done_callback(lambda f, i=i: events.put_nowait(("done", i, f)))
            return self._stream(prep, keys, events, shape)
        results = await self._results(prep, keys, [f for _, f in handles], is_disconnected)
        choices = []
        for c, res in enumerate(results):
            final = self._final(prep, c, res)
            if prep.trace:
                seq = prep.seqs[c]
                trace = self._trace_json(prep)
                final.trace = [
                    trace.snapshot(seq.x0),
                    *trace.steps(res.trace or [], len(seq.prefix)),
                ]
            choices.append(final)
        return answer_json(shape.response(choices, self._usage(prep, results)))

    async def _stream(
        self, prep: _Prepared, keys: list[int], events: asyncio.Queue, shape: Shape
    ) -> AsyncIterator[str]:
        total = len(prep.seqs)
        results: list[GenerationResult] = []
        left = total
        trace = self._trace_json(prep) if prep.trace else None
        try:
            for c in range(total):
                for chunk in shape.opening_chunks(c):
                    yield sse(answer_json(chunk))
                if trace is not None:
                    snapshot = [trace.snapshot(prep.seqs[c].x0)]
                    yield sse(answer_json(shape.trace_chunk(c, snapshot)))
            while left:
                try:
                    kind, c, payload = await asyncio.wait_for(events.get(), self.settings.keepalive)
                except TimeoutError:
                    yield SSE_KEEPALIVE
                    continue
                if kind == "trace":
                    assert trace is not None
                    steps = trace.steps(payload, len(prep.seqs[c].prefix))
                    if steps:
                        yield sse(answer_json(shape.trace_chunk(c, steps)))
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
                    yield sse(api.body())
                    yield SSE_DONE
                    return
                res = payload.result()
                results.append(res)
                left -= 1
                final = self._final(prep, c, res)
                if final.text:
                    yield sse(answer_json(shape.text_chunk(c, final.text)))
                yield sse(answer_json(shape.finish_chunk(c, final.finish_reason)))
            if shape.include_usage:
                yield sse(answer_json(shape.usage_chunk(self._usage(prep, results))))
            yield SSE_DONE
        finally:
            if left:
                self.engine.cancel(keys)

    async def _response_events(
        self, prep: _Prepared, key: int, fut: asyncio.Future, builder: ResponseBuilder
    ) -> AsyncIterator[str]:
        finished = False
        try:
            for event in builder.start_events():
                yield event
            while not fut.done():
                try:
                    await asyncio.wait_for(asyncio.shield(fut), self.settings.keepalive)
                except TimeoutError:
                    yield SSE_KEEPALIVE
                except EngineError:
                    pass
            finished = True
            err = fut.exception()
            if err is not None:
                yield builder.failed_event("server_error", str(err))
                return
            res = fut.result()
            final = self._final(prep, 0, res)
            for event in builder.final_events(
                final.text, final.finish_reason, self._usage(prep, [res])
            ):
                yield event
        finally:
            if not finished:
                self.engine.cancel([key])

    # ---------------------------------------------------------------- answers
    def _final(self, prep: _Prepared, c: int, res: GenerationResult) -> FinalChoice:
        """Choice ``c``'s text (EOS-cut, stop strings cut, echo applied) and finish reason."""
        text = prep.setup.tokenizer.decode(res.completion, skip_special_tokens=True)
        reason = res.finish_reason
        cuts = [text.find(s) for s in prep.stop if s in text]
        if cuts:
            text, reason = text[: min(cuts)], "stop"
        if prep.echo:
            text = prep.prompt_texts[c // prep.n] + text
        return FinalChoice(text, reason)

    def _usage(self, prep: _Prepared, results: list[GenerationResult]) -> Usage:
        usage = Usage.of(sum(len(p) for p in prep.prefixes), results, prep.draft_tokens)
        if self.metrics is not None:
            self.metrics.prompt_tokens.inc(usage.prompt_tokens)
            self.metrics.completion_tokens.inc(usage.completion_tokens)
        return usage

    def _trace_json(self, prep: _Prepared) -> TraceJSON:
        """Trace entries for the request's tokenizer (token texts cached across requests)."""
        if self._trace is None or self._trace.tokenizer is not prep.setup.tokenizer:
            self._trace = TraceJSON(prep.setup.tokenizer)
        return self._trace


def _no_such_model(model_id: str) -> APIError:
    return APIError(
        404, f"The model {model_id!r} does not exist", param="model", code="model_not_found"
    )


def _check_x0_fits(sampler: X0Sampler, context: int, prompt: int, param: str) -> None:
    """400 naming ``param`` when x0 could be longer than the context left after the prompt.

    Checked on the spec, before any x0 token is drawn (a Poisson mean counts as its length).
    """
    longest = sampler.mean if sampler.mean is not None else sampler.max_length
    room = context - prompt
    if longest > room:
        raise invalid(
            param,
            f"{param} asks for an x0 of up to {longest:g} tokens, but this model's context of "
            f"{context} tokens leaves {room} after the {prompt}-token prompt; use at most {room}",
            code="context_length_exceeded",
        )

"""``editflow chat``: an interactive chat against a local checkpoint or a running editflow-serve.

Type a message and press Enter. ``/reset`` forgets the conversation, ``/exit`` (or Ctrl-D)
quits. With ``--no-chat-template`` each line is a raw prompt that the model continues, the
conversation being one growing text. Replies render with a live view of the edits when the
output is a terminal (off with ``--no-visual``).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field

from editflow_core import EditOp, SamplingParams
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from editflow_cli.errors import CliError
from editflow_cli.generate import add_model_arg, add_sampling_args, load, run_one, sampling_params
from editflow_cli.render import render_edits

EXAMPLES = """examples:
  editflow chat --model runs/sft-quickstart/checkpoint-final
  editflow chat --server http://127.0.0.1:8000/v1 --api-key $EDITFLOW_API_KEY
  echo "To be, or not to be" | editflow chat --model DIR --no-chat-template

commands inside the chat: /reset (forget the conversation), /exit or Ctrl-D (quit)
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``chat`` command to the ``editflow`` parser."""
    p = sub.add_parser(
        "chat",
        help="chat in the terminal with a local checkpoint or a server",
        description="Chat with an Edit Flow model, locally or through a running editflow-serve "
        "(OpenAI API).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arg(p)
    p.add_argument(
        "--server",
        default=None,
        help="base URL of an editflow-serve, e.g. http://127.0.0.1:8000/v1",
    )
    p.add_argument(
        "--api-key",
        default=None,
        help="API key for --server (default: $EDITFLOW_API_KEY, else none)",
    )
    p.add_argument(
        "--served-model", default=None, help="model name on the server (default: its first model)"
    )
    p.add_argument(
        "--no-chat-template",
        action="store_true",
        help="continuation mode: each line is raw text the model continues",
    )
    p.add_argument("--no-visual", action="store_true", help="no live view of the edits")
    p.add_argument("--system", default=None, help="a system message to start the conversation")
    add_sampling_args(p)
    p.set_defaults(run=run)


@dataclass
class Conversation:
    """The history: chat messages, or one growing text in continuation mode."""

    chat: bool
    system: str | None = None
    messages: list[dict] = field(default_factory=list)
    text: str = ""

    def reset(self) -> None:
        """Forget the conversation (the system message stays)."""
        self.messages = [{"role": "system", "content": self.system}] if self.system else []
        self.text = ""

    def add_user(self, line: str) -> None:
        """Add the user's line: a user message, or more text to continue."""
        if self.chat:
            self.messages.append({"role": "user", "content": line})
        else:
            self.text = f"{self.text} {line}".strip() if self.text else line

    def add_reply(self, reply: str) -> None:
        """Add the model's reply: an assistant message, or the continued text."""
        if self.chat:
            self.messages.append({"role": "assistant", "content": reply})
        else:
            self.text = f"{self.text} {reply}".strip()


class LocalBackend:
    """Replies from a checkpoint loaded in this process, with a live view of every step."""

    def __init__(self, args: argparse.Namespace, console: Console, visual: bool) -> None:
        self.setup = load(args.model, args.dtype)
        self.args, self.console, self.visual = args, console, visual

    def reply(self, conv: Conversation) -> str:
        """The model's reply to the conversation, drawn live when the view is on."""
        s = self.setup
        prefix = s.chat_prefix(conv.messages) if conv.chat else s.text_prefix(conv.text)
        params: SamplingParams = sampling_params(self.args, trace=self.visual)
        if not self.visual:
            return s.decode(run_one(s, prefix, params).completion).strip()
        with Live(console=self.console, refresh_per_second=20, transient=True) as live:

            def on_step(before, step):
                if step is not None and step.edits:
                    live.update(render_edits(before, step.edits, len(prefix), s.decode))

            result = run_one(s, prefix, params, on_step)
        return s.decode(result.completion).strip()


class RemoteBackend:
    """Replies from a running editflow-serve through the official OpenAI client.

    With the live view on, the request streams with ``trace: true`` and the edits arrive on the
    server's ``editflow_trace`` side channel (token texts included, so no tokenizer is needed
    here); the reply itself is the append-only ``delta.content``.
    """

    def __init__(
        self, args: argparse.Namespace, console: Console | None = None, visual: bool = False
    ) -> None:
        import openai

        self.openai = openai
        self.console, self.visual = console, visual
        key = args.api_key or os.environ.get("EDITFLOW_API_KEY") or "none"
        self.client = openai.OpenAI(base_url=args.server, api_key=key, max_retries=0, timeout=600)
        self.args = args
        self.model = args.served_model or self._call(lambda: self.client.models.list().data[0].id)

    def _call(self, fn):
        o = self.openai
        try:
            return fn()
        except o.AuthenticationError:
            raise CliError(
                f"the server at {self.args.server} rejected the API key: pass --api-key or set "
                "EDITFLOW_API_KEY"
            ) from None
        except o.APIConnectionError:
            raise CliError(
                f"cannot reach a server at {self.args.server}: start one with "
                "`uv run editflow-serve` or check --server"
            ) from None
        except o.NotFoundError as err:
            raise CliError(
                f"the server says: {err.message} (check --served-model and --server)"
            ) from None
        except o.APIStatusError as err:
            raise CliError(f"the server answered {err.status_code}: {err.message}") from None

    def reply(self, conv: Conversation) -> str:
        """The server's reply to the conversation (streamed with its trace when the view is on)."""
        a = self.args
        extra = {"steps": a.steps, "top_k": a.top_k}
        if getattr(a, "guidance", 0.0):
            extra["guidance_scale"] = a.guidance
        if getattr(a, "correction", 0.0):
            extra["correction"] = a.correction
        common = dict(
            model=self.model,
            temperature=a.temperature,
            top_p=a.top_p,
            seed=a.seed,
            max_tokens=a.max_new_tokens,
            extra_body=extra,
        )
        if conv.chat and self.visual:
            extra["trace"] = True
            return self._call(lambda: self._stream_with_trace(conv, common)).strip()
        if conv.chat:
            out = self._call(
                lambda: self.client.chat.completions.create(messages=conv.messages, **common)
            )
            return (out.choices[0].message.content or "").strip()
        out = self._call(lambda: self.client.completions.create(prompt=conv.text, **common))
        return (out.choices[0].text or "").strip()

    def _stream_with_trace(self, conv: Conversation, common: dict) -> str:
        stream = self.client.chat.completions.create(messages=conv.messages, stream=True, **common)
        texts: list[str] = []
        reply = ""
        with Live(console=self.console, refresh_per_second=20, transient=True) as live:
            for chunk in stream:
                for choice in chunk.choices:
                    for entry in (choice.model_extra or {}).get("editflow_trace") or []:
                        texts = apply_trace_entry(texts, entry, live.update)
                    if choice.delta is not None and choice.delta.content:
                        reply += choice.delta.content
        return reply


def apply_trace_entry(texts: list[str], entry: dict, show=None) -> list[str]:
    """Apply one entry of the server's trace to the generated tokens' texts.

    The first entry (``step`` -1) holds the x0 texts; a later one lists edits whose ``pos``
    counts generated tokens before the step (an insertion after -1 lands at the start).
    ``show`` receives the rendering of the step's edits (``render_edits``).
    """
    if entry.get("step") == -1:
        return list(entry.get("texts") or [])
    edits = [
        EditOp(e["op"], e["pos"] + 1, e.get("text"), e.get("old_text")) for e in entry["edits"]
    ]
    if show is not None:  # shift by one so an insertion at the very start has a slot (-1 -> 0)
        show(render_edits(["", *texts], edits, 1, "".join))
    for e in reversed(edits):  # right to left: earlier positions stay valid
        i = e.pos - 1
        if e.op == "ins":
            texts.insert(i + 1, e.token)
        elif e.op == "del":
            del texts[i]
        else:
            texts[i] = e.token
    return texts


def run(args: argparse.Namespace) -> int:
    """``editflow chat``: read lines, print replies, until EOF or /exit; returns the exit code."""
    if args.server and args.model:
        raise CliError("give either --model (local) or --server (remote), not both")
    interactive = sys.stdin.isatty()
    console = Console(highlight=False)
    visual = not args.no_visual and console.is_terminal
    backend = (
        RemoteBackend(args, console, visual) if args.server else LocalBackend(args, console, visual)
    )
    err = Console(stderr=True, highlight=False)

    def note(text: str) -> None:  # status lines never mix with replies on stdout
        (console if interactive else err).print(f"[dim]{escape(text)}[/dim]")

    conv = Conversation(chat=not args.no_chat_template, system=args.system)
    conv.reset()
    if interactive:
        console.print("[dim]/reset forgets the conversation, /exit or Ctrl-D quits[/dim]")
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            break
        except KeyboardInterrupt:
            console.print()
            break
        line = line.strip()
        if not line:
            continue
        if line == "/exit":
            break
        if line == "/reset":
            conv.reset()
            note("(conversation reset)")
            continue
        if line.startswith("/"):
            note(f"unknown command {line.split()[0]}; use /reset or /exit")
            continue
        conv.add_user(line)
        reply = backend.reply(conv)
        conv.add_reply(reply)
        if interactive:
            console.print(f"[bold]model>[/bold] {escape(reply)}")
        else:
            sys.stdout.write(reply + "\n")
            sys.stdout.flush()
    return 0

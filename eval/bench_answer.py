"""Answer-stage benchmark: what our code adds around the model, per provider route.

    .venv/bin/python -m eval.bench_answer                     # samples/, real embedder and detector
    .venv/bin/python -m eval.bench_answer --answers 100 --threads 1 --json answer.json
    .venv/bin/python -m eval.bench_answer --embedder fake --no-privacy --parts answer

The model is the Mistral API simulator (``rag.testing.MistralSimulator``) on loopback, in
this process: its answers take well under a millisecond to compute, so the numbers are our
overhead (plus loopback HTTP), not a model's. The index is built in a temporary home from
``--docs`` (``samples/`` by default) with the real embedder (``--embedder fake`` for
FakeEmbedder) and, unless ``--no-privacy``, privacy on with the real PII detector.

- ``answer``: ``Answerer.answer`` for ``--answers`` questions, each asked through every
  route in turn (mistral = the ``mistralai`` SDK; azure-mistral and azure-inference = Azure
  AI's two routes; openai-compatible = vLLM and the like), after ``--warmup`` untimed
  rounds, principals alternating between one allowed to re-identify and one not. Every
  ``--tool-every``-th question is scripted to call ``search_documents`` first. Parts (ms):
  ``retrieve`` (``question`` = pseudonymizing the question, a part of it), ``pack``,
  ``guard`` (the egress guard on every model call, from ``Answer.timings_ms``),
  ``model`` (the client calls incl. HTTP and the simulator), ``tools``, and ``finish`` =
  total - the rest (JSON validation, citation checks, re-identification). ``floor``
  replays the recorded request bodies with a bare httpx client: the simulator and loopback
  alone, so ``model - floor`` is the client's own cost (SDK, serialisation, retry wrapper).
- ``stream``: ``Answerer.stream`` per route, time to the first ``AnswerDelta`` and to
  ``AnswerDone``.
- ``limiter``: the client-side ``RateLimiter`` in front of the real HTTP client, fed by
  ``--limiter-threads`` threads: one run limited by requests per minute, one by tokens per
  minute, each firing ``--limiter-windows`` minutes' worth of the limit. The limiter's
  clock and sleep run ``--limiter-speed`` times faster than real time (its window is a
  minute, too long to wait for several times in a benchmark); the rest is real. Reports
  the most requests and tokens in any 60-s window (and requests in any 10 s: the limiter
  lets a minute's quota through at once), and the rate over whole windows, as the limiter
  counted them (admission times) and as the server saw them (arrival times; the speed-up
  multiplies their few ms of jitter too, so a window may hold a request or two more).

Client-side limits and retries are off in the ``answer`` and ``stream`` parts, so answers
never wait on a quota.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from ingest import Workspace
from rag import Principal, Retriever, Settings, load_settings
from rag.llm import (
    AnswerDelta,
    AnswerDone,
    Answerer,
    ChatRequest,
    Message,
    RateLimiter,
    ResilientChatModel,
    RetryPolicy,
    open_chat_model,
)
from rag.privacy import write_key_file
from rag.testing import FakeEmbedder, MistralSimulator

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SIM_KEY = "bench-key"
PARTS = ("retrieve", "question", "pack", "guard", "model", "tools", "finish", "total")
#: The parts the answer reports itself (Answer.timings_ms).
TIMED = ("retrieve", "pack", "guard", "model", "tools")
ROUTES: dict[str, dict[str, Any]] = {
    "mistral": {"provider": "mistral"},
    "azure-mistral": {"provider": "azure", "azure_route": "mistral"},
    "azure-inference": {"provider": "azure", "azure_route": "inference"},
    "openai-compatible": {"provider": "openai-compatible"},
}
ALLOWED = Principal("dana", ("dpo",))  # in privacy.reidentify
OTHER = Principal("alice", ("sales",))
#: (question about samples/, a query the model might give search_documents; no names in it)
QUESTIONS = (
    ("How much written notice must either party give before the agreement renews?",
     "renewal notice period"),
    ("Who will give Saanvi the plant tour?", "plant tour safety induction"),
    ("How many days after returning must receipts be submitted in the expenses tool?",
     "expense claims deadline"),
    ("What is the daily meal allowance within Europe?", "meal allowance per diem"),
    ("When is the customer portal migration now expected?", "portal migration"),
    ("How many days ahead must trips be booked through the travel desk?", "travel desk booking"),
    ("What are the unit prices of the AV-200 and AV-350 valve bodies?", "valve body prices"),
    ("What penalty applies when a delivery is late?", "late delivery penalty"),
    ("What was the revenue for the third quarter?", "quarterly revenue"),
    ("Who is the Travel Desk Lead?", "travel desk lead contact"),
)  # fmt: skip


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0, "n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 3), "p95": round(p95, 3),
            "mean": round(statistics.fmean(ordered), 3), "n": len(ordered)}  # fmt: skip


# -- set-up --------------------------------------------------------------------------------
def base_settings(args: argparse.Namespace, tmp: Path) -> Settings:
    privacy: dict[str, Any] = {"enabled": False}
    if args.privacy:
        key = tmp / "key" / "vault.key"
        key.parent.mkdir()
        write_key_file(key)
        privacy = {"enabled": True, "key_file": str(key), "ner": args.ner,
                   "languages": ["en", "fr", "de"], "reidentify": ["group:dpo"]}  # fmt: skip
    return load_settings(
        home=tmp / "home",
        ingest={"workers": 0},
        retrieval={"k": args.k},
        embedding={"threads": args.threads} if args.threads else {},
        privacy=privacy,
        llm={"api_key": SIM_KEY, "max_retries": 0,
             "tokens_per_minute": None, "requests_per_minute": None},
    )  # fmt: skip


def routed(settings: Settings, route: str, url: str) -> Settings:
    llm = dict(ROUTES[route])
    llm["endpoint"] = url + ("/v1" if llm["provider"] == "openai-compatible" else "")
    return settings.model_copy(update={"llm": settings.llm.model_copy(update=llm)})


class Timed:
    """Wraps a callable and records how long each call took (ms)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.ms: list[float] = []
        self.pseudonymizer = getattr(fn, "pseudonymizer", None)  # the answerer looks for it

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.ms.append((time.perf_counter() - started) * 1000)

    def take(self) -> list[float]:
        spent, self.ms = self.ms, []
        return spent


def time_question(retriever: Retriever) -> Timed | None:
    """A timer around the first query step: pseudonymizing the question."""
    if not retriever.query_steps:
        return None
    timer = Timed(retriever.query_steps[0])
    retriever.query_steps = (timer, *retriever.query_steps[1:])
    return timer


# -- answers and streams -------------------------------------------------------------------
def answer_bench(
    answerers: dict[str, Answerer], sim: MistralSimulator, args: argparse.Namespace
) -> dict[str, Any]:
    """``answers`` questions, each asked through every route in turn (so drift in the
    machine's load spreads over all routes alike)."""
    step = time_question(next(iter(answerers.values())).retriever)  # one shared retriever
    rows: dict[str, list[dict[str, float]]] = {route: [] for route in answerers}
    counts = {route: {"model_calls": 0, "answers_with_tools": 0, "reidentified": 0}
              for route in answerers}  # fmt: skip
    for i in range(args.warmup + args.answers):
        question, query = QUESTIONS[i % len(QUESTIONS)]
        principal = ALLOWED if i % 2 == 0 else OTHER
        tooled = args.tool_every > 0 and i % args.tool_every == args.tool_every - 1
        for route, answerer in answerers.items():
            if tooled:
                sim.reply(tool_calls=[{"name": "search_documents", "arguments": {"query": query}}])
            answer = answerer.answer(question, principal)
            # The first pseudonymization is the question's; later ones are tool searches'.
            q = (step.take() or [0.0])[0] if step else 0.0
            if i < args.warmup:
                continue
            row = {p: answer.timings_ms.get(p, 0.0) for p in TIMED}
            row["finish"] = answer.latency_s * 1000 - sum(row.values())
            row.update(total=answer.latency_s * 1000, question=q)
            rows[route].append(row)
            c = counts[route]
            c["model_calls"] += answer.calls
            c["answers_with_tools"] += bool(answer.tool_runs)
            c["reidentified"] += answer.reidentified
    out = {}
    for route, got in rows.items():
        parts = {p: summary([r[p] for r in got]) for p in PARTS}
        parts["tools"] = summary([r["tools"] for r in got if r["tools"] > 0])
        calls = counts[route]["model_calls"]
        out[route] = {
            "parts": parts,
            "guard_per_request_ms": round(sum(r["guard"] for r in got) / max(calls, 1), 3),
            "guard_share": summary([100 * r["guard"] / r["total"] for r in got if r["total"]]),
            **counts[route],
        }
    return out


def stream_bench(answerers: dict[str, Answerer], args: argparse.Namespace) -> dict[str, Any]:
    first: dict[str, list[float]] = {route: [] for route in answerers}
    total: dict[str, list[float]] = {route: [] for route in answerers}
    for i in range(args.warmup + args.streams):
        question = QUESTIONS[i % len(QUESTIONS)][0]
        for route, answerer in answerers.items():
            started = time.perf_counter()
            ttfd = done = None
            for event in answerer.stream(question, ALLOWED if i % 2 == 0 else OTHER):
                if isinstance(event, AnswerDelta) and ttfd is None:
                    ttfd = (time.perf_counter() - started) * 1000
                elif isinstance(event, AnswerDone):
                    done = (time.perf_counter() - started) * 1000
            if i >= args.warmup and done is not None:
                first[route].append(ttfd if ttfd is not None else done)
                total[route].append(done)
    return {r: {"first_delta": summary(first[r]), "total": summary(total[r])} for r in answerers}


def floor_bench(sim: MistralSimulator, limit: int) -> dict[str, float]:
    """The last recorded chat requests posted again by a bare httpx client (no SDK, no
    guard, no limiter): the simulator and loopback HTTP alone."""
    recorded = [r for r in sim.requests if r.path.endswith("/chat/completions")]
    recorded = [r for r in recorded if not (r.json or {}).get("stream")][-limit:]
    headers = {"Authorization": f"Bearer {SIM_KEY}", "Content-Type": "application/json"}
    times = []
    with httpx.Client(timeout=10.0) as client:
        for rec in recorded:
            started = time.perf_counter()
            response = client.post(sim.url + rec.path, params=rec.query, content=rec.body,
                                   headers=headers)  # fmt: skip
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return summary(times)


def route_bench(
    settings: Settings, ws: Workspace, sim: MistralSimulator, args: argparse.Namespace
) -> dict[str, Any]:
    """The answer and stream parts, one Answerer per route on the workspace's retriever."""
    chats = [open_chat_model(routed(settings, route, sim.url)) for route in args.routes]
    answerers = {
        route: Answerer(routed(settings, route, sim.url), retriever=ws.retriever, chat=chat)
        for route, chat in zip(args.routes, chats, strict=True)
    }
    out: dict[str, Any] = {}
    try:
        sim.clear()
        if "answer" in args.parts:
            out["answer"] = answer_bench(answerers, sim, args)
            out["floor"] = floor_bench(sim, args.answers * len(answerers))
            print(f"answers: {out['floor']['n']} requests replayed for the floor", flush=True)
        if "stream" in args.parts:
            out["stream"] = stream_bench(answerers, args)
    finally:
        for chat in chats:
            chat.close()
    return out


# -- the rate limiter ----------------------------------------------------------------------
class RecordingLimiter(RateLimiter):
    """A RateLimiter that keeps (admission time, tokens) of every settled request, as its
    own window counts them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settled: list[tuple[float, int]] = []
        self._record_lock = threading.Lock()

    def settle(self, reserved: Any, actual: int) -> None:
        super().settle(reserved, actual)
        entry = reserved._entry  # the limiter's own record of when it admitted the request
        if entry is not None:
            with self._record_lock:
                self.settled.append((entry.at, max(0, actual)))


def limiter_request(settings: Settings) -> ChatRequest:
    text = " ".join(["Invoices are payable within 45 days of receipt."] * 60)  # ~480 words
    return ChatRequest((Message("user", text),), settings.llm.model, max_tokens=64)


def limiter_run(
    settings: Settings,
    sim: MistralSimulator,
    args: argparse.Namespace,
    *,
    rpm: int | None,
    tpm: int | None,
) -> dict[str, Any]:
    """``limiter_windows`` windows' worth of requests through a limited client."""
    speed = args.limiter_speed

    def clock() -> float:
        return time.monotonic() * speed

    def sleep(seconds: float) -> None:
        time.sleep(seconds / speed)

    request = limiter_request(settings)
    chat = open_chat_model(routed(settings, "openai-compatible", sim.url))
    per_request = chat.complete(request).usage.total_tokens  # unlimited: sizes the run
    count = int(args.limiter_windows * (rpm if rpm else (tpm or 0) / per_request))
    limiter = RecordingLimiter(tpm, rpm, clock=clock, sleep=sleep)
    model = ResilientChatModel(chat.inner, RetryPolicy(max_retries=0), limiter)  # type: ignore[attr-defined]
    todo = iter(range(count))
    lock = threading.Lock()
    errors: list[str] = []

    def work() -> None:
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            try:
                model.complete(request)
            except Exception as exc:  # counted, not raised: the other threads keep going
                errors.append(type(exc).__name__)

    sim.clear()
    started = time.perf_counter()
    threads = [threading.Thread(target=work, daemon=True) for _ in range(args.limiter_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    wall = time.perf_counter() - started
    model.close()
    # What the server saw: arrival times, on the limiter's (sped-up) clock.
    arrived = sorted((r.received_at * speed, per_request) for r in sim.requests)
    return {"limit_rpm": rpm, "limit_tpm": tpm, "requests": count, "errors": len(errors),
            "estimate_tokens": request.estimated_tokens(), "actual_tokens": per_request,
            "wall_s": round(wall, 2), "speed": speed,
            "limiter": window_stats(sorted(limiter.settled)),
            "server": window_stats(arrived)}  # fmt: skip


def window_stats(admitted: Sequence[tuple[float, int]]) -> dict[str, Any]:
    """Most requests and tokens in any 60-s window, and the rate over whole windows."""
    if not admitted:
        return {}
    times = [at for at, _ in admitted]
    t0, span = times[0], times[-1] - times[0]
    worst_requests = worst_tokens = worst_10s = 0
    for i, start in enumerate(times):  # the busiest window starts at an admission
        inside = [tok for at, tok in admitted[i:] if at < start + 60.0]
        worst_requests = max(worst_requests, len(inside))
        worst_tokens = max(worst_tokens, sum(inside))
        # The limiter lets a minute's quota through at once: how bursty that is.
        worst_10s = max(worst_10s, sum(1 for at in times[i:] if at < start + 10.0))
    whole = max(1, int(span // 60.0))
    in_whole = [tok for at, tok in admitted if at < t0 + whole * 60.0]
    return {
        "count": len(admitted),
        "max_requests_in_60s": worst_requests,
        "max_tokens_in_60s": worst_tokens,
        "max_requests_in_10s": worst_10s,
        "windows": whole,
        "span_s": round(span, 2),
        "requests_per_min": round(len(in_whole) / whole, 2),
        "tokens_per_min": round(sum(in_whole) / whole, 1),
    }


# -- report --------------------------------------------------------------------------------
def print_report(result: dict[str, Any]) -> None:
    cfg = result["config"]
    if result.get("answer"):
        print(f"\nanswer stage, ms per answer ({cfg['answers']} answers per route; p50/p95)")
        print("question = pseudonymizing the question (part of retrieve); finish = validation, "
              "citations, re-identification (total - the rest)")  # fmt: skip
        print(f"{'route':<18}" + "".join(f"{p:>14}" for p in PARTS))
        for route, row in result["answer"].items():
            cells = [row["parts"][p] for p in PARTS]
            print(f"{route:<18}" + "".join(f"{c['p50']:>7.1f}/{c['p95']:<6.1f}" for c in cells))
        floor = result["floor"]
        print(
            f"floor (simulator + loopback HTTP, bare httpx): {floor['p50']:.2f}/{floor['p95']:.2f}"
        )
        print("\negress guard: ms per request; share of the answer's total (p50/p95)")
        for route, row in result["answer"].items():
            share = row["guard_share"]
            print(f"  {route:<18} {row['guard_per_request_ms']:6.2f} ms   "
                  f"{share['p50']:5.1f}% / {share['p95']:5.1f}%   ({row['model_calls']} requests, "
                  f"{row['answers_with_tools']} answers with a tool step, "
                  f"{row['reidentified']} re-identified)")  # fmt: skip
    if result.get("stream"):
        print("\nstreaming, ms: first AnswerDelta p50/p95, AnswerDone p50/p95")
        for route, row in result["stream"].items():
            f, t = row["first_delta"], row["total"]
            print(f"  {route:<18} first {f['p50']:6.1f}/{f['p95']:<6.1f}  "
                  f"done {t['p50']:6.1f}/{t['p95']:<6.1f}")  # fmt: skip
    for run in result.get("limiter", []):
        limit = f"rpm {run['limit_rpm']}" if run["limit_rpm"] else f"tpm {run['limit_tpm']}"
        print(f"\nrate limiter, {limit}: {run['requests']} requests from {cfg['limiter_threads']} "
              f"threads, {run['errors']} errors, {run['wall_s']} s wall with the clock "
              f"x{run['speed']:g}; tokens per request: estimate {run['estimate_tokens']}, "
              f"actual {run['actual_tokens']}")  # fmt: skip
        for view in ("limiter", "server"):
            w = run[view]
            print(f"  {view:<8} most in any 60 s: {w['max_requests_in_60s']:4} requests "
                  f"{w['max_tokens_in_60s']:7} tokens (in 10 s: {w['max_requests_in_10s']:4} "
                  f"requests); over {w['windows']} whole window(s): "
                  f"{w['requests_per_min']:7.2f} requests/min {w['tokens_per_min']:9.1f} "
                  f"tokens/min")  # fmt: skip
    print(f"\nload average (1 min) before/after: {result['load_1min']}")


# -- main ----------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--parts", nargs="+", choices=("answer", "stream", "limiter"),
                    default=["answer", "stream", "limiter"])  # fmt: skip
    ap.add_argument("--routes", nargs="+", choices=list(ROUTES), default=list(ROUTES))
    ap.add_argument("--docs", type=Path, default=SAMPLES, help="folder to ingest")
    ap.add_argument("--answers", type=int, default=40, help="timed answers per route")
    ap.add_argument("--streams", type=int, default=10, help="timed streams per route")
    ap.add_argument("--warmup", type=int, default=3, help="untimed answers/streams per route")
    ap.add_argument("--tool-every", type=int, default=4, help="script a search_documents "
                    "call on every Nth answer (0: never)")  # fmt: skip
    ap.add_argument("-k", type=int, default=4, help="passages per question")
    ap.add_argument("--embedder", choices=("real", "fake"), default="real")
    ap.add_argument("--threads", type=int, help="torch threads for the real embedder")
    ap.add_argument(
        "--no-privacy",
        dest="privacy",
        action="store_false",
        help="privacy off: no pseudonymization, guard or re-identification",
    )
    ap.add_argument(
        "--ner",
        choices=("spacy", "none"),
        default="spacy",
        help="NER of the PII detector (none: patterns and dictionary only)",
    )
    ap.add_argument("--limiter-rpm", type=int, default=120, help="requests per minute")
    ap.add_argument("--limiter-tpm", type=int, default=30_000, help="tokens per minute")
    ap.add_argument(
        "--limiter-windows",
        type=float,
        default=2.5,
        help="requests fired = this many windows' worth of the limit",
    )
    ap.add_argument(
        "--limiter-speed",
        type=float,
        default=12.0,
        help="the limiter's clock runs this many times faster than real time",
    )
    ap.add_argument("--limiter-threads", type=int, default=4, help="concurrent callers")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-answer-"))
    result: dict[str, Any] = {"config": {k: str(v) if isinstance(v, Path) else v
                                         for k, v in vars(args).items()}}  # fmt: skip
    result["load_1min"] = [round(os.getloadavg()[0], 2)]
    settings = base_settings(args, tmp)
    embedder = FakeEmbedder(dimension=64, max_tokens=512) if args.embedder == "fake" else None
    try:
        with MistralSimulator(api_key=SIM_KEY) as sim, Workspace(settings, embedder=embedder) as ws:
            started = time.perf_counter()
            report = ws.ingest([args.docs])
            result["ingest"] = {"files": report.files_ingested, "chunks": report.chunks_written,
                                "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
            print(f"ingested {result['ingest']}", flush=True)
            if {"answer", "stream"} & set(args.parts):
                result.update(route_bench(settings, ws, sim, args))
            if "limiter" in args.parts:
                result["limiter"] = [
                    limiter_run(settings, sim, args, rpm=args.limiter_rpm, tpm=None),
                    limiter_run(settings, sim, args, rpm=None, tpm=args.limiter_tpm),
                ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["load_1min"].append(round(os.getloadavg()[0], 2))
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()

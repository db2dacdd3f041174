"""A real OpenAI-compatible HTTP server on 127.0.0.1 that stands in for an LLM service in tests and benchmarks.

`POST /v1/chat/completions` and `GET /v1/models`, on a random free port, served from a thread. What it does with
each request is scriptable: `script([...])` queues behaviours consumed one per request (in arrival order); when the
queue is empty, `policy(body)` (if set) may pick one from the request's content, else `default` applies. Behaviours:

- `"ok"`          a JSON list of descriptions of the AU named in the prompt, each stating one of its visible changes
- `"400"`          HTTP 400 (a request error: not worth retrying)
- `"401"`          HTTP 401 (no or a wrong API key), `"403"` HTTP 403 (the key may not do this)
- `"404"`          HTTP 404 (no such model; a wrong path is also a 404, the path is not checked beyond its end)
- `"405"`          HTTP 405, `"501"` HTTP 501 with an HTML page (a web server that is not an LLM server)
- `"html"`         HTTP 200 with an HTML page (a web server's welcome page)
- `"429"`          HTTP 429 with `Retry-After: <retry_after>` (seconds)
- `"500"`          HTTP 500
- `"stall"`        sleeps `stall_s` seconds before answering (longer than the client's timeout)
- `"malformed"`    HTTP 200 whose body is truncated JSON
- `"refusal"`      a well-formed completion whose text is a refusal
- `"offtopic"`     a well-formed completion with a JSON list of sentences about something else
- `"garbage"`      a well-formed completion whose text is not JSON at all

Answers are a pure function of the request (messages + seed), so a rerun of the same requests gets the same texts,
whatever the order they arrive in. `latency_s` adds a fixed delay to every request (for the benchmark).
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BEHAVIOURS = (
    "ok",
    "400",
    "401",
    "403",
    "404",
    "405",
    "501",
    "html",
    "429",
    "500",
    "stall",
    "malformed",
    "refusal",
    "offtopic",
    "garbage",
)

_AU_RE = re.compile(r"\bAU\s?(\d{1,2})\b")
_COUNT_RE = re.compile(r"\b(\d{1,2})\s+(?:\w+\s+){0,3}?(?:descriptions|sentences|strings)\b", re.IGNORECASE)

# Word pools for the synthetic descriptions: wide enough that two answers rarely share many word pairs.
_OPENERS = [
    "When this unit fires,",
    "During the action,",
    "As the muscle contracts,",
    "At onset,",
    "In this movement,",
    "Seen from the front,",
    "Under close inspection,",
    "At peak intensity,",
    "In a typical display,",
    "Across the face,",
    "With this contraction,",
    "Observers notice that",
    "Clinically,",
    "In photographs,",
]
_VERBS = [
    "pulls",
    "draws",
    "lifts",
    "tightens",
    "shifts",
    "drags",
    "presses",
    "bunches",
    "stretches",
    "moves",
    "tugs",
    "gathers",
    "deepens",
    "narrows",
    "raises",
    "lowers",
    "wrinkles",
    "creases",
    "bulges",
    "flattens",
]
_ADVERBS = [
    "slightly",
    "visibly",
    "sharply",
    "gently",
    "markedly",
    "subtly",
    "briefly",
    "steadily",
    "clearly",
    "noticeably",
    "strongly",
    "softly",
    "quickly",
    "slowly",
    "firmly",
    "evenly",
    "unevenly",
    "partly",
]
_OBJECTS = [
    "the skin",
    "the surface",
    "the tissue",
    "the contour",
    "the outline",
    "the fold",
    "the edge",
    "the shape",
    "the texture",
    "the line",
    "the furrow",
    "the bulge",
    "the corner",
    "the margin",
    "the profile",
]
_TAILS = [
    "which changes the expression",
    "so the area looks different",
    "altering its usual resting shape",
    "giving a distinct appearance",
    "and observers can spot it",
    "which coders look for",
    "a cue used when scoring",
    "compared with a neutral face",
    "most visible in profile",
    "easy to miss at low intensity",
    "often together with other units",
    "in both sides of the face",
    "even in short clips",
    "best judged against the baseline",
    "that fades when the muscle relaxes",
]
_OFFTOPIC = [
    "The stock market closed higher today after a volatile session.",
    "Preheat the oven before placing the bread inside to bake.",
    "The train to the coast leaves every hour from platform four.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The football match went to extra time and ended in penalties.",
]
REFUSAL = "I'm sorry, but I can't help with that request."


def _region_words(code: int) -> tuple[str, ...]:
    try:
        from augtext.facs import FACS

        au = FACS[code]
        return tuple(au.region_keywords) or (au.region,)
    except Exception:  # the vocabulary is not there yet: fall back to generic words
        return ("face",)


def _au_of(text: str) -> int | None:
    """The AU the prompt is about: the most frequently named code (the first one on a tie)."""
    codes = [int(m) for m in _AU_RE.findall(text)]
    if not codes:
        return None
    counts = collections.Counter(codes)
    best = max(counts.values())
    return next(c for c in codes if counts[c] == best)


def _facts(code: int) -> tuple[str, ...]:
    """What the AU does, in a few plain clauses (its FACS visible changes), so that answers pass the semantic gate."""
    try:
        from augtext.facs import FACS

        au = FACS[code]
        return (*au.appearance, f"the {au.muscles} acts on the {au.region}")
    except Exception:  # the vocabulary is not there yet: fall back to generic words
        return tuple(f"{v} {o} of the {w}" for v in _VERBS[:3] for o in _OBJECTS[:3] for w in _region_words(code))


def synth_descriptions(code: int, k: int, rng: random.Random) -> list[str]:
    """k distinct, on-topic descriptions of AU `code`: one of its visible changes, framed by varied words."""
    facts = _facts(code)
    out = []
    for _ in range(k):
        text = f"{rng.choice(_OPENERS)} in AU{code} {rng.choice(facts)}, {rng.choice(_ADVERBS)} {rng.choice(_TAILS)}."
        out.append(text)
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog (5) drops connections when 32 clients connect at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # a client that stopped (a run that gave up): not the server's error, no traceback in the output
        super().handle_error(request, client_address)


class LLMServer:
    """Loopback OpenAI-compatible server. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        default: str = "ok",
        latency_s: float = 0.0,
        retry_after: float = 1.0,
        stall_s: float = 5.0,
        model: str = "loopback-llm",
    ) -> None:
        self.default = default
        self.latency_s = latency_s
        self.retry_after = retry_after
        self.stall_s = stall_s
        self.model = model
        self._queue: collections.deque[str] = collections.deque()
        # optional content-based choice, consulted when the queue is empty: body -> behaviour (or None: default)
        self.policy: Callable[[dict[str, Any]], str | None] | None = None
        # optional scripted answers: (au named in the prompt, descriptions asked for) -> the completion's text, used
        # in place of the synthetic descriptions of "ok" (scripted LLM answers: exact sentences to validate)
        self.answer: Callable[[int, int], str] | None = None
        # a real server's token limit, with words for tokens: an answer longer than the request's max_tokens words is
        # cut there and its finish_reason is "length" (off: every answer is whole, finish_reason "stop")
        self.token_limit = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.requests = 0  # POST /v1/chat/completions received (whatever the answer)
        self.answered = 0  # of those, answered with a 200 completion
        self.log: list[dict[str, Any]] = []  # per request: behaviour, headers, body, time
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ---------------------------------------------------------------------------------------------
    def script(self, behaviours: Iterable[str]) -> None:
        """Queue behaviours for the next requests, in order."""
        for b in behaviours:
            if b not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {b!r}; one of {BEHAVIOURS}")
        with self._lock:
            self._queue.extend(behaviours)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests = self.answered = 0
            self.log.clear()

    def _next(self, body: dict[str, Any]) -> str:
        with self._lock:
            self.requests += 1
            if self._queue:
                return self._queue.popleft()
        return (self.policy(body) if self.policy else None) or self.default

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> LLMServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers and body in two writes cost a 40 ms delayed ACK each

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._json(
                        200,
                        {
                            "object": "list",
                            "data": [{"id": server.model, "object": "model", "created": 0, "owned_by": "tests"}],
                        },
                    )
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": "not found"}})
                    return
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    self._json(400, {"error": {"message": "bad JSON"}})
                    return
                behaviour = server._next(body)
                with server._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    server.log.append({"behaviour": behaviour, "headers": headers, "body": body, "t": time.monotonic()})
                if server.latency_s:
                    server._stop.wait(server.latency_s)
                server._respond(self, behaviour, body)

            def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(obj).encode()
                self._raw(status, data, headers)

            def _raw(
                self, status: int, data: bytes, headers: dict[str, str] | None = None, ctype: str = "application/json"
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): fine
                    pass

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- answers -----------------------------------------------------------------------------------------------
    def _respond(self, handler: Any, behaviour: str, body: dict[str, Any]) -> None:
        if behaviour == "429":
            handler._json(
                429,
                {"error": {"message": "rate limited", "type": "rate_limit"}},
                {"Retry-After": f"{self.retry_after:g}"},
            )
            return
        if behaviour == "400":
            handler._json(400, {"error": {"message": "bad request", "type": "invalid_request_error"}})
            return
        if behaviour == "500":
            handler._json(500, {"error": {"message": "internal error"}})
            return
        if behaviour in ("401", "403"):
            message = "Invalid API key" if behaviour == "401" else "This key may not use this model"
            handler._json(int(behaviour), {"error": {"message": message, "type": "invalid_request_error"}})
            return
        if behaviour == "404":
            model = body.get("model")
            handler._json(404, {"error": {"message": f"The model `{model}` does not exist", "type": "not_found"}})
            return
        if behaviour in ("405", "501", "html"):
            status = {"405": 405, "501": 501, "html": 200}[behaviour]
            page = f"<html><body><h1>{'Welcome to nginx!' if status == 200 else 'Error'}</h1></body></html>"
            handler._raw(status, page.encode(), ctype="text/html")
            return
        if behaviour == "stall":
            self._stop.wait(self.stall_s)
            behaviour = "ok"
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        seed = body.get("seed")
        digest = hashlib.sha256(json.dumps([body.get("messages"), seed], sort_keys=True).encode()).digest()
        rng = random.Random(digest)
        code = _au_of(prompt) or 1
        m = _COUNT_RE.search(prompt)
        k = max(1, min(int(m.group(1)), 20)) if m else 5
        if behaviour == "ok" and self.answer is not None:
            text = self.answer(code, k)
        elif behaviour == "ok":
            text = json.dumps(synth_descriptions(code, k, rng))
        elif behaviour == "refusal":
            text = REFUSAL
        elif behaviour == "offtopic":
            text = json.dumps(rng.sample(_OFFTOPIC, min(k, len(_OFFTOPIC))))
        else:  # garbage or malformed
            text = "lorem ipsum " * rng.randint(1, 4)
        finish = "stop"
        if self.token_limit and len(words := list(re.finditer(r"\S+", text))) > int(body.get("max_tokens") or 1e9):
            text, finish = text[: words[int(body["max_tokens"]) - 1].end()], "length"
        n = int(body.get("n") or 1)
        payload = {
            "id": f"chatcmpl-{digest.hex()[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
                for i in range(n)
            ],
            "usage": {
                "prompt_tokens": len(prompt.split()),
                "completion_tokens": len(text.split()),
                "total_tokens": len(prompt.split()) + len(text.split()),
            },
        }
        if behaviour == "malformed":
            data = json.dumps(payload).encode()
            handler._raw(200, data[: len(data) // 2])
            return
        with self._lock:
            self.answered += 1
        handler._json(200, payload)


def main() -> None:  # pragma: no cover - handy for trying the CLI by hand
    import argparse

    ap = argparse.ArgumentParser(description="Run the loopback LLM server in the foreground.")
    ap.add_argument("--default", default="ok", choices=BEHAVIOURS)
    ap.add_argument("--latency", type=float, default=0.0)
    args = ap.parse_args()
    with LLMServer(default=args.default, latency_s=args.latency) as srv:
        print(srv.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()


def generate_args(server: LLMServer, cache: Any, au: str = "1,2", *extra: str) -> list[str]:
    """`augtext generate` arguments for the openai backend against `server` (no API key needed on loopback)."""
    return [
        "generate",
        "--backend",
        "openai",
        "--base-url",
        server.url,
        "--model",
        "loopback",
        "--au",
        au,
        "--cache",
        str(cache),
        "--api-key-env",
        "AUGTEXT_TEST_NO_SUCH_KEY",
        "--max-retries",
        "5",
        *extra,
    ]

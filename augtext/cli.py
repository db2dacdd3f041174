"""`augtext` command line: a thin layer over the library (each command parses options and calls one function)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer

from augtext.cliutil import run_app

app = typer.Typer(
    help="Write FACS-grounded descriptions of facial Action Units with an LLM and embed them into a text-prior cache.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def generate(
    au: str = typer.Option(..., "--au", help="AUs: a range '1-26', a list '1,2,4', or a preset bp4d|disfa|gft."),
    backend: str = typer.Option(
        "reference",
        help="reference (the project's own descriptions: offline, no LLM, nothing to download), openai (any "
        "OpenAI-compatible server) or hf (local transformers model).",
    ),
    model: str | None = typer.Option(None, help="Model name/id/path. Default: bundled SmolLM2-135M-Instruct (hf)."),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible server URL (vLLM, llama.cpp, Ollama)."),
    n: int = typer.Option(8, "--n", help="Descriptions to keep per AU per style."),
    styles: str | None = typer.Option(None, help="Comma-separated description styles (see `augtext templates`)."),
    cache: Path = typer.Option(Path("cache"), help="Cache directory."),
    concurrency: int = typer.Option(8, help="Requests in flight at once (openai backend)."),
    seed: int = typer.Option(0, help="Base seed; each request gets its own seed derived from it."),
    timeout: float = typer.Option(60.0, help="Per-request timeout in seconds (openai backend)."),
    max_retries: int = typer.Option(5, help="Retries per request on 429/5xx/timeouts."),
    max_rounds: int = typer.Option(4, help="Rounds of requests per AU/style at most (the first one included)."),
    temperature: float = typer.Option(0.9, help="Sampling temperature."),
    max_tokens: int = typer.Option(400, help="Completion token limit per request."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Environment variable holding the API key (never stored)."),
    prompts: Path | None = typer.Option(None, help="Directory of extra/overriding *.j2 templates."),
    per_request: int = typer.Option(5, help="Descriptions asked for in one prompt (at most --n)."),
    lenient: bool | None = typer.Option(
        None,
        "--lenient/--strict",
        help="Salvage sentences from answers that are not a JSON list. Default: lenient for hf answers only.",
    ),
    few_shot: int = typer.Option(0, "--few-shot", help="Reference descriptions shown in each prompt as examples."),
    gate: bool = typer.Option(
        True,
        "--gate/--no-gate",
        help="Semantic gate: keep a text only if its embedding is near its own AU (see `augtext score`).",
    ),
) -> None:
    """Prompt an LLM for many diverse, validated descriptions of each AU (cached and resumable)."""
    import sys

    import click

    from augtext.backends import make_backend
    from augtext.errors import UserError
    from augtext.facs import parse_au_spec
    from augtext.generate import (
        GenerateConfig,
        format_summary,
        generate,
        none_answered_message,
        resolve_styles,
        shortfall_message,
    )

    config = GenerateConfig(
        aus=tuple(parse_au_spec(au)),
        styles=resolve_styles(styles, prompts),
        cache=cache,
        n=n,
        per_request=per_request,
        concurrency=concurrency,
        seed=seed,
        max_rounds=max_rounds,
        temperature=temperature,
        max_tokens=max_tokens,
        prompts=prompts,
        lenient=lenient,
        few_shot=few_shot,
        gate=gate,
    )
    llm = make_backend(
        backend, model, base_url=base_url, api_key_env=api_key_env, timeout=timeout, max_retries=max_retries
    )
    try:
        report = generate(config, llm)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: say what is kept, one line before run_app's "interrupted"
        from augtext.requestlog import LOG_NAME

        log = cache / LOG_NAME
        if log.is_file():
            with log.open("rb") as fh:
                answered = sum(1 for _ in fh)
            print(
                f"{log} keeps the {answered} answer(s) received: the same command resumes without asking for them "
                "again",
                file=sys.stderr,
            )
        raise
    if report.none_answered:  # the server or the options are wrong: one line, exit 2, not a list of short pairs
        raise UserError(none_answered_message(report))
    print(format_summary(report, config), file=sys.stderr)
    if not report.ok:
        print(shortfall_message(report, config), file=sys.stderr)
        raise click.exceptions.Exit(1)  # 1: only this (every handled failure is 2)


@app.command()
def embed(
    cache: Path = typer.Option(Path("cache"), help="Cache directory holding descriptions.parquet."),
    model: str | None = typer.Option(None, help="sentence-transformers model id or path. Default: all-MiniLM-L6-v2."),
    batch_size: int = typer.Option(64, help="Encoding batch size."),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1 ... Default: auto."),
) -> None:
    """Embed every description into cache/embeddings/<model>.parquet (incremental, atomic)."""
    from augtext.views import run_embed

    run_embed(cache=cache, model=model, batch_size=batch_size, device=device)


@app.command()
def stats(
    cache: Path = typer.Option(Path("cache"), help="Cache directory."),
    samples: int = typer.Option(2, help="Sample texts to show per AU."),
) -> None:
    """Per-AU counts, rejections by reason, diversity and sample texts."""
    from augtext.views import run_stats

    run_stats(cache=cache, samples=samples)


@app.command()
def score(
    cache: Path = typer.Option(Path("cache"), help="Cache directory."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the whole score as JSON here."),
    model: str | None = typer.Option(None, help="Embedding model to measure with. Default: all-MiniLM-L6-v2."),
) -> None:
    """Prior quality per AU: identifiability, specificity, diversity, validity."""
    from augtext.views import run_score

    run_score(cache=cache, json_path=json_path, model=model)


@app.command()
def templates(
    show: str | None = typer.Argument(None, help="A style to render."),
    au: str = typer.Option("12", "--au", help="The AU(s) to render the style for: 12, AU12, 1,2,4, bp4d ..."),
    prompts: Path | None = typer.Option(None, help="Directory of extra/overriding *.j2 templates."),
    n: int = typer.Option(8, "--n", help="Descriptions the rendered prompt asks for."),
) -> None:
    """List the description styles, or render one for an AU."""
    from augtext.views import run_templates

    run_templates(show=show, au=au, prompts=prompts, n=n)


def main(argv: Sequence[str] | None = None) -> int:
    return run_app(app, argv)


if __name__ == "__main__":
    raise SystemExit(main())

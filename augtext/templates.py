"""Prompt templates: one Jinja2 file per description style, rendered into OpenAI-style chat messages.

Where templates live: `<style>.j2` in the package's `prompts/` folder, plus an optional user folder whose files
override the package's by file name (and may add new styles). Files whose name starts with `_` are partials
(layouts to `{% extends %}` or `{% include %}`), not styles. The first `{# ... #}` comment of a style file is its
one-line description (`augtext templates` lists it).

How one template yields two messages: the rendered text is split on marker lines. A line that is exactly `[system]`
starts the system message and a line that is exactly `[user]` starts the user message; each message is the text up
to the next marker, stripped. Both markers are required (a layout such as `_base.j2` usually writes them, so a style
that extends it only fills in blocks).

What a template sees (all plain dicts, lists, strings and ints):
- `au`: the AU's facts: `code`, `label` ("AU12"), `name`, `muscles`, `appearance` (list of str), `region`,
  `region_keywords`, `cooccurs` and `lookalikes` (lists of int codes), `expressions` (names of the basic
  expressions whose prototype includes this AU, e.g. ["happiness", "contempt"] for AU12; may be empty).
- `cooccurring` / `lookalikes`: the same facts (without their own cross-references) for each AU that typically
  co-occurs with it / that it is most often confused with, in the order of `au.cooccurs` / `au.lookalikes`.
- `n`: how many descriptions to ask for.
- `examples`: reference descriptions of the AU in this style to show as examples (`--few-shot N`; empty list
  without it). The package's `_base.j2` lists them under the task; a template that ignores them is fine.

Templates run in Jinja2's `SandboxedEnvironment` with `StrictUndefined`: an undefined variable or an unsafe
attribute (`''.__class__`) is a UserError naming the template. The template hash (`render_messages`'s second value)
is the sha256 of the style file's source followed by the sources of every template it references (layouts,
includes), so that editing a shared layout changes the request keys of every style that uses it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import asdict
from pathlib import Path

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

import augtext
from augtext.errors import UserError
from augtext.facs import EXPRESSIONS, FACS, ActionUnit, au_label, get_au

PACKAGE_PROMPTS = Path(augtext.__file__).parent / "prompts"
SUFFIX = ".j2"
_MARKER_RE = re.compile(r"^\[(system|user)\][ \t]*$", re.MULTILINE)
_DESCRIPTION_RE = re.compile(r"^\s*\{#-?(.*?)-?#\}", re.DOTALL)


def _search_path(prompts_dir: str | Path | None) -> list[Path]:
    if prompts_dir is None:
        return [PACKAGE_PROMPTS]
    user = Path(prompts_dir)
    if not user.is_dir():
        raise UserError(f"prompts folder {str(user)!r} does not exist or is not a folder")
    return [user, PACKAGE_PROMPTS]


def _environment(prompts_dir: str | Path | None) -> SandboxedEnvironment:
    return _cached_environment(tuple(str(p) for p in _search_path(prompts_dir)))


@functools.lru_cache(maxsize=16)
def _cached_environment(search_path: tuple[str, ...]) -> SandboxedEnvironment:
    # One environment per search path: Jinja caches compiled templates in it and reloads a file that changed.
    loader = jinja2.FileSystemLoader(list(search_path))
    return SandboxedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def _style_files(prompts_dir: str | Path | None) -> dict[str, Path]:
    """style -> the file that defines it (the user folder wins over the package)."""
    found: dict[str, Path] = {}
    for folder in reversed(_search_path(prompts_dir)):
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            if not path.name.startswith("_"):
                found[path.name[: -len(SUFFIX)]] = path
    return found


def available_styles(prompts_dir: str | Path | None = None) -> list[str]:
    """Names of the description styles (template files `<style>.j2`), sorted."""
    return sorted(_style_files(prompts_dir))


def style_description(style: str, prompts_dir: str | Path | None = None) -> str:
    """The one-line description from the style template's leading `{# ... #}` comment ("" if it has none)."""
    source = _style_path(style, prompts_dir).read_text(encoding="utf-8")
    m = _DESCRIPTION_RE.match(source)
    return " ".join(m.group(1).split()) if m else ""


def _style_path(style: str, prompts_dir: str | Path | None) -> Path:
    files = _style_files(prompts_dir)
    if style not in files:
        raise UserError(f"unknown description style {style!r}; available styles: {', '.join(sorted(files)) or 'none'}")
    return files[style]


def _facts(au: ActionUnit) -> dict:
    facts = asdict(au)
    facts["label"] = au.label
    facts["expressions"] = [name for name, codes in EXPRESSIONS.items() if au.code in codes]
    for key in ("appearance", "region_keywords", "cooccurs", "lookalikes"):
        facts[key] = list(facts[key])
    return facts


def template_context(au: int, n: int, examples: list[str] | tuple[str, ...] = ()) -> dict:
    """The variables every template is rendered with (see the module docstring)."""
    unit = get_au(au)
    if int(n) < 1:
        raise UserError(f"cannot ask for {n} descriptions: n must be at least 1")

    def related(codes: tuple[int, ...]) -> list[dict]:
        out = []
        for code in codes:
            facts = _facts(FACS[code])
            del facts["cooccurs"], facts["lookalikes"]
            out.append(facts)
        return out

    return {
        "au": _facts(unit),
        "cooccurring": related(unit.cooccurs),
        "lookalikes": related(unit.lookalikes),
        "n": int(n),
        "examples": list(examples),
    }


def _template_sha256(env: SandboxedEnvironment, name: str) -> str:
    """sha256 of the template source followed by the sources of every template it references (depth first)."""
    digest = hashlib.sha256()
    seen: set[str] = set()

    def visit(tname: str) -> None:
        if tname in seen:
            return
        seen.add(tname)
        source, _, _ = env.loader.get_source(env, tname)
        digest.update(source.encode("utf-8"))
        for ref in _references(env, source):
            visit(ref)

    visit(name)
    return digest.hexdigest()


@functools.lru_cache(maxsize=256)
def _references(env: SandboxedEnvironment, source: str) -> tuple[str, ...]:
    """Names of the templates `source` extends/includes/imports (dynamic names, which cannot be followed, skipped)."""
    return tuple(ref for ref in meta.find_referenced_templates(env.parse(source)) if ref is not None)


def render_messages(
    style: str, au: int, n: int, prompts_dir: str | Path | None = None, examples: list[str] | tuple[str, ...] = ()
) -> tuple[list[dict], str]:
    """Render style `style` for AU `au` asking for `n` descriptions, showing `examples` (few-shot) if any.

    Returns `([{"role": "system", "content": ...}, {"role": "user", "content": ...}], template_sha256)`.
    """
    path = _style_path(style, prompts_dir)
    context = template_context(au, n, examples)
    env = _environment(prompts_dir)
    name = path.name
    try:
        template = env.get_template(name)
        text = template.render(context)
        sha = _template_sha256(env, name)
    except jinja2.exceptions.SecurityError as exc:
        raise UserError(f"template {str(path)!r} tried something unsafe: {exc}") from exc
    except jinja2.exceptions.UndefinedError as exc:
        raise UserError(f"template {str(path)!r} uses an undefined variable: {exc}") from exc
    except jinja2.exceptions.TemplateSyntaxError as exc:
        raise UserError(f"template {exc.filename or str(path)!r} line {exc.lineno}: {exc.message}") from exc
    except jinja2.exceptions.TemplateNotFound as exc:
        raise UserError(f"template {str(path)!r} refers to a template that does not exist: {exc}") from exc
    except Exception as exc:  # anything else a user's template can raise (range too big, index, type, recursion)
        raise UserError(
            f"template {str(path)!r} failed to render for {au_label(au)}: {type(exc).__name__}: {exc}"
        ) from exc
    return _split_messages(text, path), sha


def _split_messages(text: str, path: Path) -> list[dict]:
    parts = _MARKER_RE.split(text)
    # parts = [before, role, body, role, body, ...]
    if parts[0].strip():
        raise UserError(f"template {str(path)!r}: text before the first [system]/[user] marker line")
    bodies: dict[str, str] = {}
    for role, body in zip(parts[1::2], parts[2::2], strict=True):
        if role in bodies:
            raise UserError(f"template {str(path)!r}: marker line [{role}] appears twice")
        bodies[role] = body.strip()
    missing = [r for r in ("system", "user") if not bodies.get(r)]
    if missing:
        raise UserError(
            f"template {str(path)!r}: no {' / '.join(missing)} message (write a [{missing[0]}] "
            f"line followed by its text)"
        )
    return [{"role": "system", "content": bodies["system"]}, {"role": "user", "content": bodies["user"]}]

from __future__ import annotations

import hashlib
import json
import os
import re

import pytest

from augtext import cli
from augtext.errors import UserError
from augtext.facs import FACS
from augtext.templates import (
    PACKAGE_PROMPTS,
    available_styles,
    render_messages,
    style_description,
    template_context,
)

STYLES = ["anatomical", "appearance", "context", "contrast", "intensity"]
SAMPLE_AUS = [1, 4, 6, 12, 19, 26, 43, 46]


def _write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_package_styles():
    assert PACKAGE_PROMPTS.is_dir()
    assert set(STYLES) <= set(available_styles())
    assert not [s for s in available_styles() if s.startswith("_")], "partials are not styles"
    for style in STYLES:
        assert len(style_description(style)) > 20


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("code", SAMPLE_AUS)
def test_render_every_style(style, code):
    au = FACS[code]
    messages, sha = render_messages(style, code, 5)
    assert [m["role"] for m in messages] == ["system", "user"]
    system, user = (m["content"] for m in messages)
    assert system and user and "[user]" not in user and "[system]" not in system
    # The AU's facts are in the prompt, so the model elaborates rather than invents.
    assert au.label in user and au.name in user and au.muscles in user
    assert all(fact in user for fact in au.appearance)
    # Exact instructions about the answer: only a JSON list of n one-sentence strings, with one example.
    assert "JSON list of 5 strings" in user and "ONLY" in user and "sentence" in user
    example = re.search(r"^\[\".*\"\]$", user, re.MULTILINE)
    assert example, user
    assert json.loads(example.group(0)) and au.label in example.group(0)
    assert "{{" not in user and "{%" not in user
    assert re.fullmatch(r"[0-9a-f]{64}", sha)
    assert len(user) < 2000, "the default LLM is tiny: prompts stay short"


def test_style_specific_content():
    contrast = render_messages("contrast", 6, 4)[0][1]["content"]
    for other in FACS[6].lookalikes:
        assert FACS[other].label in contrast and FACS[other].name in contrast
    context = render_messages("context", 12, 4)[0][1]["content"]
    for other in FACS[12].cooccurs:
        assert FACS[other].label in context
    assert "happiness" in context
    intensity = render_messages("intensity", 12, 4)[0][1]["content"]
    assert all(level in intensity for level in ("A trace", "B slight", "C marked", "D severe", "E maximum"))
    assert "zygomaticus major" in render_messages("anatomical", 12, 4)[0][1]["content"]


def test_sha_is_stable_and_tracks_the_source(tmp_path):
    _, sha1 = render_messages("appearance", 12, 5)
    _, sha2 = render_messages("appearance", 1, 3)
    assert sha1 == sha2, "the hash is of the template source, not of the rendered text"
    assert sha1 != render_messages("anatomical", 12, 5)[1]
    # A user copy that differs only in the description comment is another template.
    source = (PACKAGE_PROMPTS / "appearance.j2").read_text()
    user = _write(tmp_path / "p", "appearance.j2", source.replace("Appearance:", "Looks:"))
    assert render_messages("appearance", 12, 5, user)[1] != sha1
    # The hash covers the layout it extends: style source followed by the layout source.
    base = (PACKAGE_PROMPTS / "_base.j2").read_text()
    expected = hashlib.sha256((source + base).encode()).hexdigest()
    assert sha1 == expected


def test_edited_template_is_reloaded(tmp_path):
    user = _write(tmp_path, "s.j2", "[system]\none\n[user]\n{{ au.label }}\n")
    first, sha1 = render_messages("s", 12, 3, user)
    path = _write(tmp_path, "s.j2", "[system]\ntwo\n[user]\n{{ au.name }}\n") / "s.j2"
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    second, sha2 = render_messages("s", 12, 3, user)
    assert first[0]["content"] == "one" and second[0]["content"] == "two" and sha1 != sha2


def test_context_variables():
    ctx = template_context(12, 3)
    assert ctx["n"] == 3 and ctx["au"]["label"] == "AU12" and ctx["au"]["cooccurs"] == list(FACS[12].cooccurs)
    assert [c["code"] for c in ctx["lookalikes"]] == list(FACS[12].lookalikes)
    assert ctx["cooccurring"][0]["appearance"] and "cooccurs" not in ctx["cooccurring"][0]


def test_user_folder_overrides_and_adds(tmp_path):
    user = _write(tmp_path, "appearance.j2", "{# Mine. #}\n[system]\nBe brief.\n[user]\n{{ au.label }} x{{ n }}\n")
    _write(
        tmp_path,
        "mystyle.j2",
        '{# New one. #}\n{% extends "_base.j2" %}\n{% block task %}t{% endblock %}\n'
        "{% block example %}e{% endblock %}\n",
    )
    assert set(available_styles(user)) == set(STYLES) | {"mystyle"}
    messages, _ = render_messages("appearance", 4, 2, user)
    assert messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "AU4 x2"}]
    assert style_description("appearance", user) == "Mine."
    assert "AU4 (Brow Lowerer)" in render_messages("mystyle", 4, 2, user)[0][1]["content"]
    assert render_messages("contrast", 4, 2, user) == render_messages("contrast", 4, 2)


def test_unknown_style_lists_styles():
    with pytest.raises(UserError) as info:
        render_messages("poetic", 12, 3)
    assert "poetic" in str(info.value) and all(s in str(info.value) for s in STYLES)


def test_unknown_au_and_missing_folder(tmp_path):
    with pytest.raises(UserError, match="AU3"):
        render_messages("appearance", 3, 3)
    with pytest.raises(UserError, match="does not exist"):
        render_messages("appearance", 12, 3, tmp_path / "nope")
    with pytest.raises(UserError, match="at least 1"):
        render_messages("appearance", 12, 0)


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
        ("{{ au.__class__.__init__.__globals__ }}", "unsafe"),
        ("{{ cycler.__init__.__globals__.os }}", "unsafe"),
        ("{% for i in range(10**9) %}{% endfor %}", "Range too big"),
        ("{{ nope }}", "undefined"),
        ("{{ au.nope }}", "undefined"),
        ("{{ lookalikes[99] }}", "undefined"),
        ("{% if %}", "line"),
        ('{% include "_no_such.j2" %}', "does not exist"),
    ],
)
def test_bad_user_templates_are_user_errors(tmp_path, body, expect):
    user = _write(tmp_path, "bad.j2", f"[system]\nhi\n[user]\n{body}\n")
    with pytest.raises(UserError) as info:
        render_messages("bad", 12, 3, user)
    assert "bad.j2" in str(info.value) and expect in str(info.value)


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("just text", "marker"),
        ("[system]\nonly system\n", "no user"),
        ("[user]\nonly user\n", "no system"),
        ("[system]\na\n[user]\nb\n[user]\nc\n", "twice"),
    ],
)
def test_messages_need_both_markers(tmp_path, text, expect):
    user = _write(tmp_path, "m.j2", text)
    with pytest.raises(UserError, match=expect):
        render_messages("m", 12, 3, user)


def test_cli_lists_styles(capsys):
    assert cli.main(["templates"]) == 0
    out = capsys.readouterr().out
    assert all(style in out for style in STYLES)
    assert "Contrast" in out and "package" in out


def test_cli_renders_a_style(capsys):
    assert cli.main(["templates", "contrast", "--au", "6", "--n", "3"]) == 0
    out = capsys.readouterr().out
    assert "--- system ---" in out and "--- user ---" in out
    assert "AU6 (Cheek Raiser)" in out and "JSON list of 3 strings" in out and "AU7" in out


def test_cli_renders_for_any_au_spec(capsys):
    """--au takes what it takes elsewhere: a label, or a list (each AU's prompt in turn)."""
    assert cli.main(["templates", "contrast", "--au", "AU12", "--n", "3"]) == 0
    assert "# style contrast, AU12, n=3" in capsys.readouterr().out
    assert cli.main(["templates", "contrast", "--au", "5,9", "--n", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("# style contrast, AU") == 2 and "AU5 (Upper Lid Raiser)" in out and "AU9 (Nose Wrinkler)" in out


def test_cli_user_prompts(tmp_path, capsys):
    user = _write(tmp_path, "mine.j2", "{# Mine. #}\n[system]\ns\n[user]\n{{ au.name }}\n")
    assert cli.main(["templates", "--prompts", str(user)]) == 0
    assert "mine" in capsys.readouterr().out
    assert cli.main(["templates", "mine", "--au", "45", "--prompts", str(user)]) == 0
    assert "Blink" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["templates", "poetic"], "unknown description style 'poetic'"),
        (["templates", "appearance", "--au", "3"], "AU3"),
        (["templates", "--prompts", "/no/such/folder"], "does not exist"),
    ],
)
def test_cli_bad_input_exits_2(capsys, argv, expect):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expect in err

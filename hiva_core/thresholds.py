"""Per-AU thresholds: the thresholds file (a run's thresholds.json, `eval --save-thresholds`), `--threshold` as one
number or a file, and the validation score by which `train.select` keeps an epoch (and so its thresholds)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from augtext.errors import UserError
from hiva_core.config import VAL_SELECT
from hiva_core.serialize import read_json, write_json

THRESHOLDS_FORMAT = "hiva_core.thresholds/1"
DEFAULT_THRESHOLD = 0.5  # of an AU without a stored threshold (and of every AU of a run without the file)


def _scored_by(select: str) -> str:
    """The train.select whose validation score `select` uses: its own; select=last reports the validation AUC."""
    return "val_auc" if select == "last" else select


def val_score(select: str, thresholds: dict | None) -> float | None:
    """The validation score that `select` (train.select) chooses by (select=last: the one it reports, the validation
    AUC), or None when the test split's F1 stands in: select=test, no validation rows (no thresholds), or the score
    undefined (no positive label among the rows)."""
    by = _scored_by(select)
    if by not in VAL_SELECT or thresholds is None:
        return None
    score = thresholds.get(VAL_SELECT[by][0], {}).get("avg", math.nan)
    return float(score) if math.isfinite(score) else None


def selected_on(select: str, thresholds: dict | None) -> str:
    """What chooses the kept epoch, in words (val_score); for select=last, what the kept epoch's score reports."""
    if val_score(select, thresholds) is not None:
        words = VAL_SELECT[_scored_by(select)][1]
    else:
        words = "test avg F1 at 0.5" + (" (no validation score)" if select in VAL_SELECT else "")
    return f"the last epoch; {words}" if select == "last" else words


def write_thresholds(path: str | Path, record: dict[str, Any]) -> None:
    """A thresholds file (format THRESHOLDS_FORMAT), atomically: `record` holds `thresholds` and how they were
    chosen."""
    write_json(path, {"format": THRESHOLDS_FORMAT, **record})


def read_thresholds(path: str | Path, fix: str, alone: bool = False) -> dict[int, float]:
    """{AU code: threshold} from a thresholds file (a run's thresholds.json, or `eval --save-thresholds`'s); a
    missing or damaged file is a UserError naming it and ending with `fix`. `alone`: the thresholds for faces read
    without their neutral frame, which a run with `model.reference_dropout` stores beside its own ({} if none)."""
    from augtext.facs import parse_au_label

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found: no thresholds file there; {fix}")
    data = read_json(path, "thresholds file")
    try:
        if alone:
            if "alone" not in data:
                return {}
            data = data["alone"]
        out = {parse_au_label(str(k)): float(v) for k, v in data["thresholds"].items()}
    except (KeyError, AttributeError, TypeError, ValueError, UserError) as exc:
        raise UserError(f"{path} is not a thresholds file ({type(exc).__name__}: {exc}); {fix}") from None
    bad = {k: v for k, v in out.items() if not 0.0 <= v <= 1.0}
    if bad:
        raise UserError(f"{path}: thresholds must lie in [0, 1], got {bad}; {fix}")
    return out


def read_val_auc(path: str | Path) -> dict[int, float]:
    """{AU code: AUC} on the rows a thresholds file's thresholds were chosen on (its `val_auc`, the kept epoch's for a
    run's thresholds.json); {} when the file holds none, and no entry for an AU whose AUC is undefined there."""
    from augtext.facs import parse_au_label

    record = read_json(Path(path), "thresholds file").get("val_auc")
    out: dict[int, float] = {}
    for name, value in (record if isinstance(record, dict) else {}).items():
        if name != "avg" and isinstance(value, (int, float)) and math.isfinite(value):
            out[parse_au_label(str(name))] = float(value)
    return out


def threshold_number(threshold: float | str | Path | None) -> float | None:
    """--threshold as one number for every AU (checked to lie in [0, 1]); None when it is unset or names a file."""
    if threshold is None or isinstance(threshold, Path):
        return None
    try:
        number = float(threshold)
    except ValueError:
        return None  # a thresholds file's path
    if not 0.0 <= number <= 1.0:
        raise UserError(f"--threshold must be between 0 and 1, got {threshold}")
    return number

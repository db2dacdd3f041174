"""augtext: FACS-grounded AU descriptions written by an LLM, embedded into a Parquet text-prior cache."""

from __future__ import annotations

__version__ = "0.1.0"

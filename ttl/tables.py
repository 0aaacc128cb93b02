"""The Evaluations table of TeenyTinyLlama's model card, shared by model cards and evaluation
reports:

    | Processed Tokens | Perplexity | Energy Consumption (kWh) | Emissions (KgCO2eq) |

Unknown values (a checkpoint without energy tracking, a Hub revision without a known token
count) print as "-".
"""

from __future__ import annotations

import math
from collections.abc import Iterable

TABLE_HEADER = ("Processed Tokens", "Perplexity", "Energy Consumption (kWh)", "Emissions (KgCO2eq)")


def format_tokens(tokens: int | None) -> str:
    """Token counts the way the model card prints them: 819.2M, 3.8B, 204.8K; "-" if unknown."""
    if tokens is None:
        return "-"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if tokens >= scale:
            return f"{tokens / scale:.1f}{suffix}"
    return str(tokens)


def format_quantity(value: float | None) -> str:
    """Two decimals, or two significant digits below 0.01 (tiny CPU runs use milli-kWh); "-" if unknown."""
    if value is None or not math.isfinite(value):
        return "-"
    if value == 0 or abs(value) >= 0.01:
        return f"{value:.2f}"
    # Two significant digits in plain decimals (0.000061, not 6.1e-05).
    return f"{value:.{1 - math.floor(math.log10(abs(value)))}f}"


def markdown_table(rows: Iterable[tuple[int | None, float | None, float | None, float | None]]) -> str:
    """The table, one line per (tokens, perplexity, kWh, kg CO2eq) in the given order."""
    lines = [
        "| " + " | ".join(TABLE_HEADER) + " |",
        "|" + "|".join("-" * (len(h) + 2) for h in TABLE_HEADER) + "|",
    ]
    for tokens, perplexity, kwh, kg in rows:
        cells = (format_tokens(tokens), format_quantity(perplexity), format_quantity(kwh),
                 format_quantity(kg))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

"""Options and helpers shared by the verbs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ratbench.errors import RatbenchError

DataRootOpt = Annotated[
    Path | None,
    typer.Option("--data-root", help="Data directory (default: $RATBENCH_DATA, else the user cache dir)."),
]
ResultsOpt = Annotated[
    Path | None, typer.Option("--results", help="Results directory (default: ./results).")
]


def parse_int_list(text: str) -> list[int]:
    """'1-5' -> [1..5]; '1,3' -> [1, 3]; '1-3,7' -> [1, 2, 3, 7]."""
    out: list[int] = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise RatbenchError(f"Cannot read {text!r} as a list of integers; write e.g. 1-5 or 1,3,5.") from None
    if not out:
        raise RatbenchError("An empty list of seeds was given; write e.g. --seeds 1-5.")
    return list(dict.fromkeys(out))


def parse_name_list(text: str) -> list[str]:
    return list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))

"""One syntax for ``name:key=value:key=value`` lists on the command line (``dlskills plot
optimizers --optimizers``, ``dlskills validate --models``), the same as ``dlskills train --opt``:
a value is read as a Python literal, so a tuple is written with commas, ``betas=0.9,0.99``.

Commas also separate the items of the list; a comma-separated piece that starts with a number
(or true/false/none) continues the value before it: ``sgd:lr=0.1,adam:betas=0.9,0.99,momentum``
is sgd, adam with betas (0.9, 0.99), and momentum; ``aggmo:betas=0,0.9,0.99:lr=0.1`` is aggmo
with three betas and lr 0.1; ``adam:betas=(0.9,0.99)`` works too.
"""

from __future__ import annotations

import ast
from typing import Any


def _is_literal_piece(piece: str) -> bool:
    """A number, tuple or true/false/none: the continuation of a tuple value."""
    if "=" in piece:
        return False
    if piece.lower() in ("true", "false", "none", "null"):
        return True
    try:
        value = ast.literal_eval(piece)
    except (ValueError, SyntaxError):
        return False
    return isinstance(value, int | float | tuple)


def split_items(spec: str) -> list[str]:
    """``"sgd:lr=0.1,adam:betas=0.9,0.99,momentum"`` -> ``["sgd:lr=0.1",
    "adam:betas=0.9,0.99", "momentum"]``."""
    items: list[str] = []
    for piece in (part.strip() for part in spec.split(",")):
        # "0.99" or "0.99:lr=0.1" after "adam:betas=0.9": more of the tuple (then more options)
        open_tuple = bool(items) and items[-1].count("(") > items[-1].count(")")
        if open_tuple or (items and "=" in items[-1] and _is_literal_piece(piece.split(":")[0])):
            items[-1] += f",{piece}"
        elif piece:
            items.append(piece)
    return items


def parse_item(item: str, option: str) -> tuple[str, dict[str, Any]]:
    """``"adam:lr=0.1:betas=0.9,0.99"`` -> ``("adam", {"lr": 0.1, "betas": (0.9, 0.99)})``."""
    from dlskills.train.config import parse_assignment

    name, *options = item.split(":")
    kwargs: dict[str, Any] = {}
    for text in options:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{option}: option {text!r} of {name.strip()!r} is not key=value")
        if ";" in value:
            raise ValueError(
                f"{option}: {text!r}: write a tuple with commas, "
                f"{key.strip()}={value.replace(';', ',')}"
            )
        key, parsed = parse_assignment(text, option)
        kwargs[key] = parsed
    return name.strip(), kwargs

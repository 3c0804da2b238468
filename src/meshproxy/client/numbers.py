"""GB figures as the client shows them: fixed notation, 9 decimals (one byte), never an
exponent, the way the meshproxy server writes them (its domain.units.gb_text; this package
imports nothing of the server, and a test holds the two equal)."""

from __future__ import annotations

GB_DECIMALS = 9


def gb_text(gb: float) -> str:
    """0.000002432, not 2.432e-06; 1.176023394, not 1.1760233940000002."""
    return f"{round(gb, GB_DECIMALS) + 0.0:.{GB_DECIMALS}f}"  # + 0.0: no "-0.000000000"


class Gigabytes(float):
    """A float of GB that prints as `gb_text` (str, repr, f-strings without a format spec),
    so a person reading a value, a dict of them or a table cell never sees an exponent.
    Arithmetic gives plain floats back."""

    def __repr__(self) -> str:
        return gb_text(self)

    __str__ = __repr__


def gigabytes(value: float) -> Gigabytes:
    """`value` rounded to one byte (sums of floats drift: 1.1760233940000002)."""
    return Gigabytes(round(value, GB_DECIMALS))

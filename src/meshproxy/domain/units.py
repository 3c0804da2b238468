"""Bandwidth units. 1 GB = 10**9 bytes (design decision: decimal gigabytes)."""

GB = 10**9
GB_DECIMALS = 9  # one byte


def bytes_to_gb(n: int) -> float:
    """Usage as the API reports it: GB as a float, with 9 decimals (one byte)."""
    return round(n / GB, GB_DECIMALS)


def gb_to_bytes(gb: int) -> int:
    return gb * GB


def gb_text(gb: float) -> str:
    """A GB figure as every output writes it for people and spreadsheets (API JSON, CSV):
    fixed notation with 9 decimals, one byte, never an exponent (2.432e-06 is written
    0.000002432). The client writes the same (meshproxy.client.numbers; it imports nothing
    of the server, and a test holds the two equal)."""
    # Adding 0.0 turns the -0.0 that rounding a tiny negative leaves into 0.0.
    return f"{round(gb, GB_DECIMALS) + 0.0:.{GB_DECIMALS}f}"

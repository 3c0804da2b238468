"""Bandwidth units. 1 GB = 10**9 bytes (design decision: decimal gigabytes)."""

GB = 10**9


def bytes_to_gb(n: int) -> float:
    """Usage as the API reports it: GB as a float, with 9 decimals (one byte)."""
    return round(n / GB, 9)


def gb_to_bytes(gb: int) -> int:
    return gb * GB

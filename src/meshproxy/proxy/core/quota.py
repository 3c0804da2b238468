"""The quota-cut rules: how much of a transfer may still move for an account near its
limit, and when its connection is cut. Pure: the driver asks with the account's allowance
left (`AccountState.allowance`: None, no limit; 0 or less, reached) and carries out the
answer (server/allowance.py, splice.py); the sweep's rule (a connection whose account is
refused, by its limit or a change, is aborted) is `machine.judge`'s `refused`.

| event                                    | rule                          | command              |
|------------------------------------------|-------------------------------|----------------------|
| bytes to send or forward, `left` allowed | fewer than `left`: all go     | write them           |
|                                          | else the first `left` go      | write those, cut     |
| a charge reaches the limit               | `AccountState.charge` -> True | cut (after the call) |
| a spliced tunnel may read                | at most `left` (and a chunk)  | read; 0: end it      |
| a sweep finds the account refused        | `judge(refused=True)`         | ABORT                |
"""

from __future__ import annotations


def allowed(left: int | None, nbytes: int) -> int | None:
    """Of `nbytes` about to move for an account with `left` bytes of allowance: None when
    all may go and the connection goes on; else how many go before the connection is cut
    (all of them when they reach the limit exactly, none once it is passed)."""
    if left is None or nbytes < left:
        return None
    return max(0, left)


def read_size(left: int | None, chunk: int) -> int:
    """How much a spliced tunnel reads at once: a `chunk`, at most the allowance left (so
    a cut comes within one read of the limit); 0: the limit is reached, end the tunnel."""
    if left is None:
        return chunk
    return max(0, min(chunk, left))

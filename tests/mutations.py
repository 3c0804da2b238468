"""One hypothesis strategy for fuzzing a wire protocol: a valid message mutated a few times
(bytes inserted, deleted or replaced, tokens of the protocol inserted, or the rest cut
off). Used by the proxy's fuzz tests (tests/hardening) and the admin listener's
(tests/proxy/test_ops.py)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

ACTIONS = ("insert", "delete", "replace", "token")


def mutations(
    valid: Sequence[bytes], tokens: Sequence[bytes], actions: Sequence[str] = ACTIONS
) -> st.SearchStrategy[bytes]:
    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(valid)))
        for _ in range(draw(st.integers(0, 6))):
            at = draw(st.integers(0, len(data)))
            action = draw(st.sampled_from(actions))
            if action == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=4))
            elif action == "delete":
                del data[at : at + draw(st.integers(1, 8))]
            elif action == "replace" and at < len(data):
                data[at] = draw(st.integers(0, 255))
            elif action == "cut":
                del data[at:]
            else:
                data[at:at] = draw(st.sampled_from(tokens))
        return bytes(data)

    return mutated()

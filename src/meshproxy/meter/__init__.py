"""Usage counters: bytes per account summed in memory and written to the store in batches.

`Meter` is the interface the data plane uses; `LocalMeter` keeps the sums in this
process. A Redis-backed meter (shared live counters for many nodes) fits the same
interface.
"""

from meshproxy.meter.base import Meter
from meshproxy.meter.local import LocalMeter, UsageBuffer

__all__ = ["LocalMeter", "Meter", "UsageBuffer"]

"""Usage counters: bytes per account summed in memory and written to the store in batches.

`Meter` is the interface the data plane uses; `LocalMeter` keeps the sums in this
process. The Redis meter (meter/shared.py) also keeps `SharedCounters`, live counters every
node adds to.
"""

from meshproxy.meter.base import Meter, NoSharedCounters, SharedCounters, shared_counters
from meshproxy.meter.buffer import UsageBuffer
from meshproxy.meter.local import LocalMeter

__all__ = [
    "LocalMeter",
    "Meter",
    "NoSharedCounters",
    "SharedCounters",
    "UsageBuffer",
    "shared_counters",
]

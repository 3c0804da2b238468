"""The access log: one line per proxy request and per tunnel, written off the request path.

The data plane hands each finished request to `AccessLog.add` as one `Entry` (record.py);
a writer thread encodes batches (formats.py: JSON
through msgspec structs, or Squid's format) and appends them to a file rotated by size,
or to stdout (writer.py).
`admin logs` reads the files back (search.py).
"""

from meshproxy.accesslog.record import Entry
from meshproxy.accesslog.writer import AccessLog, open_access_log

__all__ = ["AccessLog", "Entry", "open_access_log"]

"""The access log: one line per proxy request and per tunnel, written off the request path.

The data plane hands each finished request to `AccessLog.add` as one `Entry` (record.py),
whose line is laid out there and then in a buffer (formats.py: JSON lines, or Squid's
format); a writer thread appends the buffer, handed over every quarter second, to a file
rotated by size, or to stdout (writer.py).
`admin logs` reads the files back (search.py).
"""

from meshproxy.accesslog.record import Entry
from meshproxy.accesslog.writer import AccessLog, open_access_log

__all__ = ["AccessLog", "Entry", "open_access_log"]

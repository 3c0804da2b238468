"""Countries of IP addresses from a MaxMind-format database (.mmdb).

The GeoLite2-Country / GeoIP2-Country layout (City databases too): a record's
`country.iso_code`, else its `registered_country.iso_code`. Read once at start by
`config.load_settings` to tag egress IPs; nothing here is used per request. maxminddb
(the `geoip` extra) is imported only when a database is configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from meshproxy.extras import missing


class GeoIPError(Exception):
    """The database cannot be used; the message names the file."""


def countries(database: Path, addresses: Iterable[str]) -> dict[str, str]:
    """{address: "CC"} for each of `addresses` the database places in a country."""
    problem = missing("geoip", "reading a GeoIP database")
    if problem is not None:
        raise GeoIPError(problem)
    import maxminddb

    try:
        reader = maxminddb.open_database(str(database))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as error:
        raise GeoIPError(f"cannot read the GeoIP database {database}: {_reason(error)}") from None
    found: dict[str, str] = {}
    with reader:
        for address in addresses:
            try:
                record = reader.get(address)
            except ValueError:
                continue  # an IPv6 address in an IPv4-only database: not placed
            except maxminddb.InvalidDatabaseError as error:
                raise GeoIPError(f"the GeoIP database {database} is corrupt: {error}") from None
            code = _country_code(record)
            if code is None:
                continue
            if len(code) != 2 or not code.isalpha():
                raise GeoIPError(
                    f"the GeoIP database {database} gives {address} the country {code!r}, "
                    "not a two-letter ISO 3166 code"
                )
            found[address] = code.upper()
    return found


def _country_code(record: object) -> str | None:
    if not isinstance(record, Mapping):
        return None
    for key in ("country", "registered_country"):
        place = record.get(key)
        if isinstance(place, Mapping) and isinstance(place.get("iso_code"), str):
            return str(place["iso_code"])
    return None


def _reason(error: Exception) -> str:
    import maxminddb

    if isinstance(error, OSError) and error.strerror:
        return error.strerror  # without the repeated (bytes) file name
    if isinstance(error, maxminddb.InvalidDatabaseError):
        return "not a MaxMind DB file"
    return str(error)

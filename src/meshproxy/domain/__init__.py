"""Pure rules of the service: accounts, limits, billing periods, validation. No I/O here."""

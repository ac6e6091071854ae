"""Signed permit credentials: the pure cryptographic core of the permit QR code (CWT in COSE_Sign1,
Base45-encoded). No database and no web framework here; the key store and endpoints call in."""

"""Benchmarks: each module ``benchmarks/<domain>_<name>.py`` runs ours and the peer on the same data."""

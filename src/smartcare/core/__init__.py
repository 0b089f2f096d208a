"""Pieces used by two or more domains: settings, data locator, registry, training, metrics."""

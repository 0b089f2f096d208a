"""smartcare: transformer models at work across smart healthcare.

Domains: ``imaging``, ``genomics``, ``hospital`` and ``publichealth``; shared pieces live in ``core``.
"""

__version__ = "0.1.0"

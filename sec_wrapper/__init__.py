"""sec: the Enterprise Console for self-hosted Flow Production Tracking sites (CLI side)."""

__version__ = "0.1.0"

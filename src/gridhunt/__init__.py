"""gridhunt: hunt for a vendor compromise in a utility's evidence."""

__version__ = "0.1.0"

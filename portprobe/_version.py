"""The version, in a module of its own so that any layer may read it without importing
the package root (which lazily re-exports the library and so sits above everything)."""

__version__ = "0.1.0"

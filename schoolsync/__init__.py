"""schoolsync: integration and sync middleware for online schools."""

__version__ = "0.1.0"

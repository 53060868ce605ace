"""Row-level operations on the state store, as plain functions taking a Connection.

The caller owns the transaction (``Database.write()`` / ``read()``), so several stores can
change state atomically.
"""

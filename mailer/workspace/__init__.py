"""The workspace's operations: each call makes one change and writes its operations-log line.

The web workspace calls these (and the read-only views beside them); the
domains below know nothing of who acts.
"""

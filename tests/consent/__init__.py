"""Tests of consent/: the state machine, the ledger, rights, import, retention, tokens."""

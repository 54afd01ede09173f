"""Tests of mailer/delivery/: the campaign runner, its ledger, the pool, the bytes on the wire."""

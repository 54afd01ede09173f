"""Tests of mailer/archive/: the public archive, its web copies, its feed."""

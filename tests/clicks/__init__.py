"""Tests of mailer/clicks/: the counted redirect, its counters, an issue's figures."""

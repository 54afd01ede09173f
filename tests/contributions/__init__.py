"""Tests of mailer/contributions/: sent in, confirmed, moderated, purged."""

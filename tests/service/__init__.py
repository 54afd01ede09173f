"""Tests of mailer/service/: the running service's jobs."""

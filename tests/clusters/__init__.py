"""Tests of mailer/clusters/."""

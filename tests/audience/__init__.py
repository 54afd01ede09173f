"""Tests of mailer/audience/."""

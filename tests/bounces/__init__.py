"""Tests of mailer/bounces/: returned mail parsed, tied to a copy, acted on; forged reports."""

"""Tests of mailer/cadence/: schedules and their slots on an injected clock."""

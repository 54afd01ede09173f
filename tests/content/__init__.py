"""Tests of mailer/content/: feeds, events and calendars, curation, compiling an issue."""

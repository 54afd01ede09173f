"""Tests of mailer/app/: settings, the database and its migrations, the wiring."""

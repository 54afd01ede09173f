"""Tests of mailer/web/: pages, the admin API, and the guards around the app."""

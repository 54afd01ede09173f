"""Tests of mailer/cli/: the command line's exit codes, output and effects."""

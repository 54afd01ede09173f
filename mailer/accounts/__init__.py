"""Accounts of the workspace: people, roles, passwords, sessions, logins, the operations log."""

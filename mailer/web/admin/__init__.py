"""The web workspace for editors, auditors and admins: server-rendered pages with htmx."""

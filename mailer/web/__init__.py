"""The web edge: public pages and self-service, the admin API, guards around the app."""

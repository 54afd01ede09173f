"""The application's base (settings, database, logs, migrations) and its wiring."""

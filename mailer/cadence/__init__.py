"""Cadence: cron slots in a time zone, schedules and their slots, the publisher."""

"""The running service: the scheduler's jobs, housekeeping, start and clean stop."""

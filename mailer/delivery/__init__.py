"""Delivery: an approved issue to every consenting reader exactly once, and its audit."""

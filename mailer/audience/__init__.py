"""Readers as they describe themselves (organisation, country, topics) and segments of them."""

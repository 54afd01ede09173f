"""Contributions: news and events sent in by clusters, confirmed by mail, moderated."""

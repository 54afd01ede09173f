"""Content: feeds and events gathered, issues curated, approved and compiled."""

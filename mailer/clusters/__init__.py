"""The cluster catalogue: clusters, their import and moderation, and the cluster of the month."""

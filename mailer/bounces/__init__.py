"""Bounces: returned mail parsed, tied to a copy we sent, and acted on."""

"""What readers found useful, without tracking anyone: aggregate clicks and issue stats."""

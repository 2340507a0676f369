"""``cupy.lib`` of the stand-in."""

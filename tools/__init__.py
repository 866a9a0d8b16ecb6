"""Developer and CI tooling (not shipped in the image)."""

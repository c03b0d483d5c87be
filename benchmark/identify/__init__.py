"""Identification from a face video: frame quality, video reading, identity database, pipeline."""

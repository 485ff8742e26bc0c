"""Finding songs: the catalog, its vector index and the ranking of candidates for a singer."""

"""One module per I/O model; each holds only its loop (see ``engine.server``)."""

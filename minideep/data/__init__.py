"""Video data: reading and writing video, synthetic sets, datasets and loaders."""

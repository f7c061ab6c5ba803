"""One module per CLI verb; see dlskills.cli for the contract."""

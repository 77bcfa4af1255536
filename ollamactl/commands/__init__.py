"""One module per command family, registered explicitly in ollamactl.cli."""

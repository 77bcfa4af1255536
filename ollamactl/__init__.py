"""ollamactl: a command-line client for Ollama servers, local or remote."""

__version__ = "0.1.0"

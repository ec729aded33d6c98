"""coach: an LLM-assisted communication coach for IT leaders."""

__version__ = "0.1.0"

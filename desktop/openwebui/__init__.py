"""Open WebUI beside the chat: in Docker (the usual way) or from an `open-webui` pip install."""

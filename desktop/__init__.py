"""Foundry Desk: private AI chat on a laptop, served by a supervised local model runtime."""

__version__ = "0.1.0"
APP_NAME = "foundry-desk"

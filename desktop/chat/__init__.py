"""The chat: a Chainlit server that streams answers from the local model."""

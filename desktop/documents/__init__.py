"""The user's own files, indexed for the chat: reading documents, the index, the command line."""

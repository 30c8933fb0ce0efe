"""The Foundry Local runtime: hosted in a child process, or an endpoint we attach to."""

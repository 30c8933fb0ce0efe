"""The one base of the errors a user is told of: catch `FoundryDeskError` to show any of them.

    FoundryDeskError              its message says what went wrong and what to do
     ├─ SettingsError             config: a settings file or value the app cannot use
     ├─ AlreadyRunning            runrecord: another run of this user owns the services
     ├─ RuntimeRequestError       runtime.service: the runtime host refused, or did not answer
     ├─ ModelNotFound, ModelUnusable, SwitchInProgress
     │                            runtime.control: the runtime host refused a switch (in the host)
     ├─ EndpointUnreachable       runtime.attach: the endpoint to attach to does not answer
     ├─ DockerError               openwebui.docker: the Docker CLI or engine said no
     ├─ ApiError                  openwebui.account: Open WebUI refused the app's account
     ├─ SignInError               openwebui.door: a one-click sign-in could not be made
     └─ SetupRefused              chat.setup: the chat's first-run view cannot do that now

Each also derives from the built-in exception it was before (ValueError, ConnectionError,
RuntimeError...), so code catching those still does.
"""

from __future__ import annotations


class FoundryDeskError(Exception):
    """A problem the user is told of; its message says what to do."""

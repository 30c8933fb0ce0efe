"""The first run, in the chat page: what the local runtime lacks, and the user's answer to it.

An installed user cannot set environment variables, so when the runtime has no model the chat
page shows a setup view instead of an empty chat, from `state()`, polled while it is shown. The
user then

- chooses a model folder (typed, pasted, or picked in the window's folder dialog): it is
  checked here, served by the runtime, and only once it is served saved as `model_path` in the
  settings file, so a folder that does not work is never kept;
- or downloads the model the runtime offers (the configured one: nothing to save);
- or, offline, has the runtime ask the catalog again once back online.

No web framework here: `setup_api` puts these behind HTTP routes.
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

from desktop.chat.endpoint import remote_target
from desktop.config import Settings, SettingsError, save_setting
from desktop.errors import FoundryDeskError
from desktop.process import process_alive
from desktop.runtime.host import byo_model_id
from desktop.runtime.service import RuntimeClient, RuntimeRequestError
from desktop.runtime.status import RuntimeState, RuntimeStatus

MODEL_FOLDER_NEEDS = (
    "A model folder holds one model in ONNX Runtime GenAI format: its genai_config.json, its .onnx "
    "files and its tokenizer files."
)
LOAD_TIMEOUT_S = 600.0
"""How long a chosen folder may take to load (a large model, a slow disk)."""
SETUP_STATES = frozenset({RuntimeState.NO_MODEL, RuntimeState.DOWNLOADING, RuntimeState.LOADING})
"""Runtime states in which, with no model served yet, the page shows the setup view."""


class SetupRefused(FoundryDeskError):
    """The user's choice cannot be carried out; the message says why, for the page to show."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status to answer with."""


class ModelSetup:
    """The setup view's state and actions, over the runtime's control API and the settings file.

    Every method blocks (a status read, a request to the runtime): call them off the event loop.
    """

    def __init__(
        self,
        settings: Settings,
        settings_file: Path,
        client: RuntimeClient,
        load_timeout_s: float = LOAD_TIMEOUT_S,
    ) -> None:
        self.settings = settings
        self.settings_file = settings_file
        self.client = client
        self.load_timeout_s = load_timeout_s

    @property
    def hosted(self) -> bool:
        """The app hosts the runtime (no `base_url`): only then is there a model to choose."""
        return self.settings.base_url is None

    @property
    def remote_answers(self) -> bool:
        """A remote endpoint can answer without a local model (hybrid routing): the chat works."""
        return self.settings.routing != "local-only" and remote_target(self.settings) is not None

    def state(self) -> dict[str, Any]:
        """What the setup view shows (`needed`: whether it is shown at all, in place of the chat)."""
        status = self._live_status() if self.hosted else None
        download = None
        if status is not None and status.download_alias:
            download = {"alias": status.download_alias, "size_mb": status.download_size_mb}
        return {
            "hosted": self.hosted,
            "needed": (
                status is not None
                and status.state in SETUP_STATES
                and status.model_id is None
                and not self.remote_answers
            ),
            "state": status.state.value if status is not None else "starting",
            "message": status.message if status is not None else "",
            "model": self.settings.model,
            "catalog_reachable": status.catalog_reachable if status is not None else None,
            "download": download,
            "downloads_allowed": self.settings.allow_download and not self.settings.offline,
            "offline_mode": self.settings.offline,
            "progress": status.progress if status is not None else None,
        }

    def choose_folder(self, path: object) -> dict[str, Any]:
        """Serve the model in the folder at `path`, then save it as the model to serve."""
        self._require_hosted()
        folder = model_folder(path)
        try:
            status = self.client.select(str(folder), self.load_timeout_s)
        except RuntimeRequestError as error:
            if error.status in (None, HTTPStatus.CONFLICT):  # not answering, or busy: not the folder
                raise SetupRefused(str(error), 409) from None
            raise SetupRefused(f"Foundry Desk could not use {folder}: {error} {MODEL_FOLDER_NEEDS}") from None
        except TimeoutError:
            raise SetupRefused(f"The model in {folder} is still loading; it is not saved yet.", 504) from None
        if status.state is not RuntimeState.READY or status.model_id != byo_model_id(folder):
            raise SetupRefused(
                f"Foundry Desk could not load the model in {folder}: {status.message} {MODEL_FOLDER_NEEDS}"
            )
        try:
            save_setting(self.settings_file, "model_path", folder)
        except (SettingsError, OSError) as error:
            raise SetupRefused(
                f"The model in {folder} is served now, but it could not be saved in {self.settings_file} "
                f"({error}): choose it again at the next start.",
                500,
            ) from None
        return {"model_path": str(folder), "settings_file": str(self.settings_file), "state": self.state()}

    def download(self) -> dict[str, Any]:
        """Start the download the runtime offers; the state then shows its progress."""
        self._require_hosted()
        if self.settings.offline:
            raise SetupRefused(
                "Offline mode is on: nothing is downloaded. Turn it off in the tray menu first.", 409
            )
        if not self.settings.allow_download:
            raise SetupRefused("Downloads are turned off in settings (allow_download = false).", 409)
        status = self._live_status()
        if status is None or status.state is not RuntimeState.NO_MODEL or not status.download_alias:
            now = status.message if status is not None else "the model runtime is starting."
            raise SetupRefused(f"There is nothing to download now: {now}", 409)
        alias = status.download_alias
        try:
            self.client.start_select(alias)
        except RuntimeRequestError as error:
            raise SetupRefused(f"The download of {alias} could not start: {error}", 409) from None
        return self.state()

    def retry(self) -> dict[str, Any]:
        """Have the runtime ask the catalog again (back online?) and look for its model again."""
        self._require_hosted()
        try:
            self.client.retry_catalog()
        except RuntimeRequestError as error:
            raise SetupRefused(str(error), 409) from None
        return self.state()

    def _require_hosted(self) -> None:
        if not self.hosted:
            raise SetupRefused(
                f"This chat uses the model endpoint at {self.settings.base_url}; there is no model "
                "to choose here.",
                409,
            )

    def _live_status(self) -> RuntimeStatus | None:
        """The runtime's status, unless it is a killed host's last word (restarting)."""
        status = self.client.status()
        return status if status is not None and process_alive(status.pid) else None


def model_folder(path: object) -> Path:
    """The model folder the user gave, checked: a full path to a folder with a genai_config.json."""
    text = path.strip().strip("\"'") if isinstance(path, str) else ""  # pasted paths come quoted
    if not text:
        raise SetupRefused("Type or paste the path of a model folder.")
    folder = Path(text).expanduser()
    if not folder.is_absolute():
        example = Path.home() / "Models" / "my-model"
        raise SetupRefused(f"{text} is not a full path. Give the model folder's full path, like {example}.")
    if not folder.exists():
        raise SetupRefused(f"There is no folder {folder}. {MODEL_FOLDER_NEEDS}")
    if not folder.is_dir():
        raise SetupRefused(f"{folder} is a file, not a folder. {MODEL_FOLDER_NEEDS}")
    if not (folder / "genai_config.json").is_file():
        raise SetupRefused(
            f"{folder} is not a model folder: it has no genai_config.json. {MODEL_FOLDER_NEEDS}"
        )
    return folder.resolve()

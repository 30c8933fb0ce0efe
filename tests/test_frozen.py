"""What the frozen app does differently, and what goes into it: fast checks without building it
(tests/test_package.py builds, installs and runs it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from desktop import compat
from installer import bundle_rules

ROOT = Path(__file__).resolve().parents[1]

BUNDLE_PATH = "/opt/foundry-desk/_internal"


@pytest.mark.skipif(not compat.IS_LINUX, reason="LD_LIBRARY_PATH is the Linux loader's")
def test_programs_started_by_the_frozen_app_get_the_users_library_path() -> None:
    environ = {"LD_LIBRARY_PATH": BUNDLE_PATH, "LD_LIBRARY_PATH_ORIG": "/home/me/lib", "PATH": "/usr/bin"}
    compat.restore_library_path(environ, frozen=True)
    assert environ == {"LD_LIBRARY_PATH": "/home/me/lib", "PATH": "/usr/bin"}

    unset_before = {"LD_LIBRARY_PATH": BUNDLE_PATH, "PATH": "/usr/bin"}  # the bootloader saves no original
    compat.restore_library_path(unset_before, frozen=True)
    assert unset_before == {"PATH": "/usr/bin"}


def test_from_source_the_library_path_is_left_alone() -> None:
    environ = {"LD_LIBRARY_PATH": "/home/me/lib"}
    compat.restore_library_path(environ, frozen=False)
    assert environ == {"LD_LIBRARY_PATH": "/home/me/lib"}


def test_the_bundle_takes_the_built_pages_not_their_tooling(tmp_path: Path) -> None:
    for name in ("webgpu/index.html", "webgpu/app.mjs", "webgpu/build.mjs", "webgpu/package.json",
                 "webgpu/ort/ort.wasm.min.mjs", "webgpu/ort/manifest.json", "webgpu/model/digits.onnx",
                 "webgpu/model/train_digits.py", "webgpu/node_modules/onnxruntime-web/dist/ort.min.mjs",
                 "resources/icons/app-256.png", "resources/icons/make_icons.py", "resources/README.md",
                 "resources/chainlit/config.toml", "resources/chainlit/frontend/index.html",
                 "resources/chainlit/frontend/build.mjs", "resources/chainlit/frontend/assets/app.mjs",
                 "resources/chainlit/frontend/assets/vendor/marked.esm.js",
                 "resources/chainlit/frontend/node_modules/marked/package.json"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    taken = {
        Path(source).relative_to(tmp_path).as_posix() for source, _ in bundle_rules.app_data_files(tmp_path)
    }
    assert taken == {
        "webgpu/index.html", "webgpu/app.mjs", "webgpu/ort/ort.wasm.min.mjs", "webgpu/ort/manifest.json",
        "webgpu/model/digits.onnx", "resources/icons/app-256.png", "resources/chainlit/config.toml",
        "resources/chainlit/frontend/index.html", "resources/chainlit/frontend/assets/app.mjs",
        "resources/chainlit/frontend/assets/vendor/marked.esm.js",
    }  # fmt: skip
    destinations = dict(bundle_rules.app_data_files(tmp_path))
    assert destinations[str(tmp_path / "webgpu/ort/manifest.json")] == "webgpu/ort"


def test_system_libraries_stay_out_and_python_goes_in() -> None:
    assert bundle_rules.is_system_file("/usr/lib/x86_64-linux-gnu/libgtk-3.so.0")
    assert bundle_rules.is_system_file("/usr/lib/x86_64-linux-gnu/girepository-1.0/WebKit2-4.1.typelib")
    assert not bundle_rules.is_system_file("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0")
    assert not bundle_rules.is_system_file(str(ROOT / ".venv" / "lib" / "libfoo.so"))
    assert bundle_rules.unwanted_package_file(
        "onnxruntime/capi/onnxruntime_pybind11_state.cpython-311-x86_64-linux-gnu.so"
    )
    assert not bundle_rules.unwanted_package_file("onnxruntime/capi/libonnxruntime.so.1.31.0")


def test_without_a_console_what_the_app_prints_goes_to_a_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop import cli

    monkeypatch.setenv("FOUNDRY_DESK_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "stdout", None)  # as in a windowed build started from the desktop
    monkeypatch.setattr(sys, "stderr", None)
    assert cli.main(["--status"]) == 0
    sys.stdout.close()
    console = tmp_path / "logs" / "console.log"
    assert '"state": "not running"' in console.read_text(encoding="utf-8")
    assert console.stat().st_mode & 0o777 == 0o600  # the user's alone

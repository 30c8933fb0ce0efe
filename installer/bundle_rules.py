"""What goes into the frozen app and what stays out: the rules `foundry-desk.spec` applies.

Kept apart from the spec (which only PyInstaller can run) so that they read as one list and the
tests can check them.
"""

from __future__ import annotations

import fnmatch
from importlib import metadata
from pathlib import Path, PurePosixPath

HIDDEN_IMPORTS = [
    # Chainlit's data layer loads its SQLite driver by URL.
    "aiosqlite",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    # The runtime host finds ONNX Runtime's libraries through these packages (find_spec).
    "onnxruntime",
    "onnxruntime_genai_core",
]
PLATFORM_BACKENDS = {
    "linux": ["pystray._appindicator", "pystray._gtk", "pystray._xorg", "webview.platforms.gtk"],
    "win32": ["pystray._win32", "webview.platforms.winforms", "webview.platforms.edgechromium"],
    "darwin": ["pystray._darwin", "webview.platforms.cocoa"],
}
"""pystray and pywebview pick their backend at run time, unseen by the analysis
(collect_submodules('pystray') fails: it imports every backend)."""
GTK_RUNTIME_HOOKS = ("pyi_rth_gtk", "pyi_rth_gio", "pyi_rth_gdkpixbuf", "pyi_rth_glib")
"""PyInstaller's runtime hooks that point GTK at copies inside the bundle, which we do not ship."""


def hidden_imports(platform: str) -> list[str]:
    """Modules the analysis cannot see, for a `sys.platform` value."""
    key = "linux" if platform.startswith("linux") else platform
    return [*HIDDEN_IMPORTS, *PLATFORM_BACKENDS.get(key, [])]


EXCLUDED_MODULES = [
    # Never imported by the app, but reachable from optional imports of its dependencies.
    "numpy",
    "setuptools",
    "pkg_resources",
    "tkinter",
    "readline",
    "grpc",
    "opentelemetry.exporter.otlp.proto.grpc",
    # Development tools that the build's environment may hold (pydantic's mypy plugin, tests).
    "mypy",
    "mypyc",
    "pydantic.mypy",
    "pydantic.v1.mypy",
    "ast_serialize",
    "pytest",
    "_pytest",
    "playwright",
    "sklearn",
    "scipy",
    "onnx",
    # PyJWT signs Chainlit's cookies with HMAC; RSA/EC (cryptography, 16 MB) is never used.
    "cryptography",
    # ONNX Runtime's Python binding (30 MB): the runtime host uses ONNX Runtime through Foundry
    # Local's native library, and only needs the onnxruntime package to locate its .so.
    "onnxruntime.capi.onnxruntime_pybind11_state",
    "onnxruntime.capi._pybind_state",
    # gi.repository modules are generated at run time from the system's typelibs; bundling
    # their hooks would copy GTK, GLib and WebKit into the app (about 150 MB) and point GTK at them.
    "gi.repository.Gtk",
    "gi.repository.Gdk",
    "gi.repository.GdkPixbuf",
    "gi.repository.Gio",
    "gi.repository.GLib",
    "gi.repository.GObject",
    "gi.repository.WebKit2",
    "gi.repository.Soup",
    "gi.repository.AppIndicator3",
    "gi.repository.AyatanaAppIndicator3",
    "gi.repository.Pango",
    "gi.repository.cairo",
    "gi.repository.Atk",
    "gi.repository.HarfBuzz",
    "gi.repository.JavaScriptCore",
    "gi.repository.xlib",
    "gi.repository.freetype2",
    "gi.repository.GModule",
    # pywebview's other backends: the Linux build uses GTK.
    "webview.platforms.qt",
    "webview.platforms.cef",
    "webview.platforms.android",
    "PyQt5",
    "PyQt6",
    "PySide2",
    "PySide6",
    "qtpy",
]

UNWANTED_IN_BUNDLE = [
    "onnxruntime/capi/onnxruntime_pybind11_state*",
    "**/*.map",
    "**/node_modules/**",
    "**/__pycache__/**",
]
"""Files dropped from what the hooks collected (paths inside the bundle)."""

SYSTEM_PREFIXES = ("/usr/lib", "/lib", "/usr/share", "/usr/local/lib", "/etc")
"""Where the system's own libraries and typelibs live (Debian, Ubuntu, Fedora layouts)."""

APP_FILES = {
    "resources": [
        "icons/*.png",
        "icons/*.ico",
        "chainlit/config.toml",
        "chainlit/chainlit.md",
        "chainlit/frontend/index.html",
        "chainlit/frontend/assets/*.mjs",
        "chainlit/frontend/assets/*.css",
        "chainlit/frontend/assets/vendor/*",
    ],
    "webgpu": ["index.html", "*.mjs", "*.css", "model/*.onnx", "ort/*"],
}
"""The app's own files, by folder: the built pages (not their node_modules, package files or
build scripts), the icons (not the script that draws them), the WebGPU model (not its trainer)."""
BUILD_SCRIPTS = frozenset({"build.mjs"})
"""Matched by the patterns above, but only the pages' build step uses them."""


def app_data_files(root: Path) -> list[tuple[str, str]]:
    """(source, folder in the bundle) for every file of APP_FILES under the checkout `root`."""
    found: list[tuple[str, str]] = []
    for top, patterns in APP_FILES.items():
        for pattern in patterns:
            for path in sorted((root / top).glob(pattern)):
                if path.is_file() and path.name not in BUILD_SCRIPTS:
                    found.append((str(path), str(path.parent.relative_to(root))))
    return found


def is_system_file(source: str) -> bool:
    """A library or typelib of the operating system (to be taken from the system at run time)."""
    path = str(Path(source).resolve()) if source else ""
    if Path(path).name.startswith("libpython"):
        return False  # the interpreter itself always travels with the app
    return any(path == prefix or path.startswith(prefix + "/") for prefix in SYSTEM_PREFIXES)


def unwanted_package_file(destination: str) -> bool:
    """A collected file the app never uses (by its path inside the bundle)."""
    path = PurePosixPath(destination.replace("\\", "/")).as_posix()
    return any(fnmatch.fnmatch(path, pattern) for pattern in UNWANTED_IN_BUNDLE)


def mypyc_helpers(distribution: str) -> list[str]:
    """The hash-named helper modules a mypyc-compiled distribution (tomli) imports unseen."""
    files = metadata.files(distribution) or []
    return sorted({file.name.split(".")[0] for file in files if "__mypyc" in file.name})

"""Builds Foundry Desk's Linux packages from the frozen app: a `.deb` and a `.tar.gz`.

    python installer/linux/debian.py deb BUNDLE OUT_DIR
    python installer/linux/debian.py tar BUNDLE OUT_DIR

The `.deb` puts the bundle under /opt/foundry-desk, a link to it at /usr/bin/foundry-desk, a
desktop entry and hicolor icons; its Depends are the system libraries the bundle leaves out (GTK,
WebKit2GTK and what Python needs). Before building, every ELF file of the bundle is checked:
each system library it needs must come from a package the `.deb` depends on, so a library
missing from Depends fails the build here instead of the app on a user's machine.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NAME = "foundry-desk"
INSTALL_DIR = Path("/opt") / NAME
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

DEPENDS = [
    # What Python and the bundled native libraries link against.
    "libc6 (>= 2.36)",
    "libstdc++6",
    "libgcc-s1",
    "libatomic1",
    "libssl3 | libssl3t64",
    "libsqlite3-0",
    "libffi8",
    "zlib1g",
    "libbz2-1.0",
    "liblzma5",
    "libuuid1",
    # The tray and the window: the system's GTK 3 and WebKit2GTK 4.1, through GObject introspection.
    "libgirepository-1.0-1",
    "libglib2.0-0 | libglib2.0-0t64",
    "libgtk-3-0 | libgtk-3-0t64",
    "gir1.2-gtk-3.0",
    "gir1.2-webkit2-4.1",
]
RECOMMENDS = [
    "gir1.2-ayatanaappindicator3-0.1",  # the tray icon on KDE, and on GNOME with its extension
    "xdg-utils",  # opens links, the logs folder and Open WebUI in the user's programs
]
DESCRIPTION = """Private AI chat on your laptop that keeps working offline
 Foundry Desk runs the Foundry Local model runtime for you, keeps it healthy in
 the background, and gives you a chat window and an OpenAI-compatible endpoint
 on 127.0.0.1. Nothing leaves your computer unless you ask it to download a
 model."""


@dataclass(frozen=True)
class Missing:
    """A system library the bundle needs that no package in Depends provides."""

    library: str
    needed_by: str
    package: str | None


def version() -> str:
    text = (ROOT / "desktop" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'__version__ = "([^"]+)"', text)
    if found is None:
        raise SystemExit("no __version__ in desktop/__init__.py")
    return found.group(1)


def architecture() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()


# -- the dependency check -----------------------------------------------------------------------


def elf_files(bundle: Path) -> Iterator[Path]:
    for path in sorted(bundle.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as stream:
                if stream.read(4) == b"\x7fELF":
                    yield path


def needed_libraries(elf: Path, bundle: Path) -> Iterator[tuple[str, str | None]]:
    """(soname, resolved path or None) for each library `elf` links against directly, as the
    loader finds them with the bundle's own folder first (as the frozen app's loader does).

    Only direct needs count: what those libraries need in turn is their packages' business.
    """
    dynamic = subprocess.run(["readelf", "-d", str(elf)], capture_output=True, text=True, check=False)
    direct = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic.stdout))
    env = {**os.environ, "LD_LIBRARY_PATH": str(bundle / "_internal")}
    result = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, env=env, check=False)
    for line in result.stdout.splitlines():
        soname, arrow, target = (part.strip() for part in line.partition("=>"))
        if not arrow or soname not in direct:
            continue
        path = target.split(" (")[0].strip()
        yield soname, None if path == "not found" else path


@functools.cache
def owning_package(library: str) -> str | None:
    """The Debian package that installed `library` (tries the merged-/usr spellings too)."""
    real = Path(library).resolve()
    candidates = {library, str(real)}
    for path in list(candidates):
        if path.startswith("/usr/lib/"):
            candidates.add(path.removeprefix("/usr"))
        elif path.startswith("/lib/"):
            candidates.add("/usr" + path)
    for candidate in sorted(candidates):
        result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return result.stdout.split(":")[0].strip()
    return None


def declared_packages(relations: Iterable[str]) -> set[str]:
    """Every package name that satisfies a relation in `relations` (alternatives included)."""
    names = set()
    for relation in relations:
        for alternative in relation.split("|"):
            names.add(alternative.split("(")[0].strip())
    return names


def missing_dependencies(bundle: Path, depends: Iterable[str] = DEPENDS) -> list[Missing]:
    """System libraries the bundle needs whose package is not in `depends`."""
    declared = declared_packages(depends)
    bundled = {path.name for path in bundle.rglob("*.so*")}
    internal = str((bundle / "_internal").resolve())
    missing: dict[str, Missing] = {}
    for elf in elf_files(bundle):
        for soname, path in needed_libraries(elf, bundle):
            if path is None:
                # Loaded by name by the code that needs it (Foundry Local preloads ONNX Runtime).
                if not any(name.startswith(soname) for name in bundled):
                    missing[soname] = Missing(soname, str(elf.relative_to(bundle)), None)
                continue
            if str(Path(path).resolve()).startswith(internal) or soname in missing:
                continue
            package = owning_package(path)
            if package is None or package.split(":")[0] not in declared:
                missing[soname] = Missing(soname, str(elf.relative_to(bundle)), package)
    return sorted(missing.values(), key=lambda item: item.library)


# -- the packages -------------------------------------------------------------------------------


def stage_deb(bundle: Path, stage: Path, arch: str) -> None:
    """The .deb's file tree and control files under `stage`."""
    target = stage / INSTALL_DIR.relative_to("/")
    shutil.copytree(bundle, target, symlinks=True)
    (stage / "usr/bin").mkdir(parents=True)
    (stage / "usr/bin" / NAME).symlink_to(INSTALL_DIR / NAME)
    applications = stage / "usr/share/applications"
    applications.mkdir(parents=True)
    shutil.copyfile(HERE / f"{NAME}.desktop", applications / f"{NAME}.desktop")
    write_icons(stage / "usr/share/icons/hicolor")
    doc = stage / "usr/share/doc" / NAME
    doc.mkdir(parents=True)
    shutil.copyfile(HERE / "copyright", doc / "copyright")

    control = stage / "DEBIAN"
    control.mkdir()
    installed_kib = (
        sum(p.stat().st_size for p in stage.rglob("*") if p.is_file() and not p.is_symlink()) // 1024
    )
    fields = {
        "Package": NAME,
        "Version": version(),
        "Architecture": arch,
        "Maintainer": "Foundry Desk developers <foundry-desk@users.noreply.github.com>",
        "Installed-Size": str(installed_kib),
        "Depends": ", ".join(DEPENDS),
        "Recommends": ", ".join(RECOMMENDS),
        "Section": "utils",
        "Priority": "optional",
        "Description": DESCRIPTION,
    }
    (control / "control").write_text("".join(f"{k}: {v}\n" for k, v in fields.items()), encoding="utf-8")
    for script in ("prerm",):
        shutil.copyfile(HERE / script, control / script)
        (control / script).chmod(0o755)
    for path in stage.rglob("*"):  # what the build machine's umask made must not leak in
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)


def write_icons(hicolor: Path) -> None:
    from PIL import Image

    with Image.open(ROOT / "resources" / "icons" / "app-512.png") as source:
        art = source.convert("RGBA")
        for size in ICON_SIZES:
            folder = hicolor / f"{size}x{size}" / "apps"
            folder.mkdir(parents=True, exist_ok=True)
            art.resize((size, size), Image.Resampling.LANCZOS).save(folder / f"{NAME}.png", optimize=True)


def build_deb(bundle: Path, out_dir: Path) -> Path:
    missing = missing_dependencies(bundle)
    if missing:
        for item in missing:
            print(
                f"  {item.library} (needed by {item.needed_by}) from {item.package or 'no package'}",
                file=sys.stderr,
            )
        raise SystemExit("the bundle needs system libraries that the .deb does not depend on (see DEPENDS)")
    arch = architecture()
    out = out_dir / f"{NAME}_{version()}_{arch}.deb"
    with tempfile.TemporaryDirectory(prefix="deb-", dir=out_dir) as temp:
        stage = Path(temp) / "root"
        stage.mkdir()
        stage_deb(bundle, stage, arch)
        subprocess.run(
            [
                "dpkg-deb",
                "--root-owner-group",
                "-Zxz",
                "-z6",
                f"--threads-max={os.cpu_count() or 1}",
                "--build",
                str(stage),
                str(out),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def build_tar(bundle: Path, out_dir: Path) -> Path:
    """The bundle as `foundry-desk-<version>-linux-<machine>.tar.gz`, with a desktop entry and an
    icon beside it, for distributions without dpkg."""
    machine = os.uname().machine
    out = out_dir / f"{NAME}-{version()}-linux-{machine}.tar.gz"
    top = f"{NAME}-{version()}"

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(out, "w:gz", compresslevel=6) as archive:
        archive.add(bundle, arcname=top, filter=owned_by_root)
        archive.add(HERE / f"{NAME}.desktop", arcname=f"{top}/share/{NAME}.desktop", filter=owned_by_root)
        archive.add(
            ROOT / "resources/icons/app-256.png", arcname=f"{top}/share/{NAME}.png", filter=owned_by_root
        )
        archive.add(HERE / "README-tarball.txt", arcname=f"{top}/README.txt", filter=owned_by_root)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=("deb", "tar", "check"))
    parser.add_argument("bundle", type=Path)
    parser.add_argument("out_dir", type=Path, nargs="?", default=ROOT / "build" / "dist")
    args = parser.parse_args(argv)
    bundle = args.bundle.resolve()
    if not (bundle / NAME).is_file():
        raise SystemExit(
            f"{bundle} is not a built bundle (no {NAME} executable): run installer/build.sh bundle"
        )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.kind == "check":
        missing = missing_dependencies(bundle)
        for item in missing:
            print(f"{item.library}\t{item.needed_by}\t{item.package or '-'}")
        return 1 if missing else 0
    out = build_deb(bundle, args.out_dir) if args.kind == "deb" else build_tar(bundle, args.out_dir)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

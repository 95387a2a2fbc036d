"""The architecture in DESIGN.md, checked: packages talk through their public surfaces."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "care", "devices", "firmware_bridge", "alerts", "video", "web")
# Which packages each package may import (besides itself). server knows everything.
ALLOWED: dict[str, set[str]] = {
    "care": set(),
    "firmware_bridge": set(),
    "devices": {"care", "firmware_bridge"},
    "alerts": {"care", "devices"},
    "video": {"care"},
    "web": {"care", "devices", "alerts", "video"},
    "server": {"care", "devices", "firmware_bridge", "alerts", "video", "web"},
}
# Third-party libraries a package must not use, by DESIGN.md ("never does").
FORBIDDEN_LIBRARIES: dict[str, set[str]] = {
    "alerts": {"paho", "litestar", "amqtt", "aiortc"},
    "firmware_bridge": {"sqlalchemy", "sqlmodel", "paho", "litestar", "amqtt"},
    "video": {"paho", "amqtt"},
    "care": {"paho", "litestar", "amqtt", "aiortc"},
}


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) for every import in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def _modules(package: str) -> list[Path]:
    """Every Python file of a package."""
    return sorted((ROOT / package).rglob("*.py"))


def test_every_package_states_what_it_owns_and_exports_its_names() -> None:
    for package in PACKAGES:
        module = importlib.import_module(package)
        assert module.__doc__, f"{package}/__init__.py needs a docstring saying what it owns"
        if package != "server":
            exported = getattr(module, "__all__", None)
            assert exported, f"{package} must list its public names in __all__"
            for name in exported:
                assert hasattr(module, name), f"{package}.__all__ names missing {name}"


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_allowed_packages_through_their_surface(package: str) -> None:
    problems = []
    for path in _modules(package):
        for line, module, names in _imports(path):
            top = module.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line}"
            if top in FORBIDDEN_LIBRARIES.get(package, set()):
                problems.append(f"{where} uses {top}, which {package} must not")
            if top not in PACKAGES or top == package:
                continue
            if top not in ALLOWED[package]:
                problems.append(f"{where} imports {module}: {package} may not depend on {top}")
            elif module != top:
                problems.append(f"{where} imports {module}: use the public surface `{top}`")
            else:
                public = set(importlib.import_module(top).__all__)
                hidden = [name for name in names if name not in public]
                if hidden:
                    problems.append(f"{where} imports {hidden} which {top} does not export")
    assert not problems, "\n".join(problems)


def test_nothing_imports_server() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in PACKAGES
        if package != "server"
        for path in _modules(package)
        for line, module, _ in _imports(path)
        if module.split(".")[0] == "server"
    ]
    assert not offenders, f"only server may import server: {offenders}"


def test_layout_check_catches_a_violation(tmp_path: Path) -> None:
    """The checker itself sees a deep import, so the test above can fail."""
    bad = tmp_path / "bad.py"
    bad.write_text("from devices.models import Device\nimport server.app\n")
    modules = [module for _, module, _ in _imports(bad)]
    assert modules == ["devices.models", "server.app"]


# One role per file: a product module over this many lines does several jobs.
MAX_MODULE_LINES = 600
# Modules allowed over the limit, each with its one-line reason.
LONG_MODULES: dict[str, str] = {
    "server/cli.py": "moved/split by the layout work (one module per command group)",
    "server/bench_checkins.py": "moved/split by the layout work (bench/)",
    "devices/simulator.py": "moved/split by the layout work (homesim/)",
    "devices/virtual_device.py": "moved/split by the layout work (homesim/)",
}
# Every top-level product package, the simulated homes and the benchmarks included.
SIZED_PACKAGES = (*PACKAGES, "homesim", "bench")


def _long_modules(root: Path, packages: tuple[str, ...], limit: int) -> dict[str, int]:
    """Product modules over ``limit`` lines (migrations aside), by path from ``root``."""
    found: dict[str, int] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            lines = len(path.read_text().splitlines())
            if lines > limit:
                found[path.relative_to(root).as_posix()] = lines
    return found


def test_no_product_module_is_over_600_lines_without_a_reason() -> None:
    long_modules = _long_modules(ROOT, SIZED_PACKAGES, MAX_MODULE_LINES)
    unexplained = {path: lines for path, lines in long_modules.items() if path not in LONG_MODULES}
    assert not unexplained, f"split by role, or give a one-line reason: {unexplained}"
    stale = sorted(set(LONG_MODULES) - set(long_modules))
    assert not stale, f"no longer over {MAX_MODULE_LINES} lines (or gone): drop {stale}"


def test_size_check_catches_a_long_module(tmp_path: Path) -> None:
    """The checker itself sees a long module and leaves migrations alone."""
    (tmp_path / "alerts" / "migrations").mkdir(parents=True)
    (tmp_path / "alerts" / "long.py").write_text("x = 1\n" * 601)
    (tmp_path / "alerts" / "short.py").write_text("x = 1\n" * 600)
    (tmp_path / "alerts" / "migrations" / "0001.py").write_text("x = 1\n" * 900)
    assert _long_modules(tmp_path, ("alerts", "bench"), 600) == {"alerts/long.py": 601}

"""The architecture in DESIGN.md, checked: packages talk through their public surfaces."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "server",
    "care",
    "devices",
    "firmware_bridge",
    "alerts",
    "video",
    "indicators",
    "interop",
    "web",
)
# Which packages each package may import (besides itself). server knows everything.
ALLOWED: dict[str, set[str]] = {
    "care": set(),
    "firmware_bridge": set(),
    "devices": {"care", "firmware_bridge"},
    "alerts": {"care", "devices"},
    "video": {"care"},
    # The figures and the FHIR mapping read the domains; FHIR also says the figures.
    "indicators": {"care", "devices", "alerts", "video"},
    "interop": {"care", "devices", "alerts", "video", "indicators"},
    "web": {"care", "devices", "alerts", "video", "indicators", "interop"},
    "server": {
        "care",
        "devices",
        "firmware_bridge",
        "alerts",
        "video",
        "indicators",
        "interop",
        "web",
    },
}
# Third-party libraries a package must not use, by DESIGN.md ("never does").
FORBIDDEN_LIBRARIES: dict[str, set[str]] = {
    "alerts": {"paho", "litestar", "amqtt", "aiortc"},
    "firmware_bridge": {"sqlalchemy", "sqlmodel", "paho", "litestar", "amqtt"},
    "video": {"paho", "amqtt"},
    "care": {"paho", "litestar", "amqtt", "aiortc"},
    "indicators": {"paho", "litestar", "amqtt", "aiortc"},
    "interop": {"paho", "litestar", "amqtt", "aiortc"},
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

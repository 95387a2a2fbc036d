"""The architecture in DESIGN.md, checked: packages talk through their public surfaces."""

from __future__ import annotations

import ast
import importlib
import sys
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
    "homesim",
    "bench",
)
# Which packages each package may import (besides itself). server knows every product
# package; homesim is firmware written from docs/mqtt.md and knows none; bench runs the
# service as `vaki serve` does, so it may import server's modules (server has no surface).
ALLOWED: dict[str, set[str]] = {
    "homesim": set(),
    "bench": {"care", "devices", "alerts", "video", "server"},
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
        "homesim",
        "bench",
    },
}
# Packages without a public surface: whoever may import them imports their modules.
NO_SURFACE = {"server"}
# Third-party code homesim may use besides the standard library: firmware has paho.
HOMESIM_LIBRARIES = {"paho"}
# The only modules that may import bench: the `vaki bench` commands.
BENCH_IMPORTERS = ("server/cli/",)
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
            elif top in NO_SURFACE:
                continue
            elif module != top:
                problems.append(f"{where} imports {module}: use the public surface `{top}`")
            else:
                public = set(importlib.import_module(top).__all__)
                hidden = [name for name in names if name not in public]
                if hidden:
                    problems.append(f"{where} imports {hidden} which {top} does not export")
    assert not problems, "\n".join(problems)


def _importers(target: str) -> list[str]:
    """``path:line`` of every import of ``target`` in a product package other than itself."""
    return [
        f"{path.relative_to(ROOT)}:{line}"
        for package in PACKAGES
        if package != target
        for path in _modules(package)
        for line, module, _ in _imports(path)
        if module.split(".")[0] == target
    ]


def test_nothing_imports_server() -> None:
    # bench is the exception: it runs the service in-process, as `vaki serve` does.
    offenders = [where for where in _importers("server") if not where.startswith("bench/")]
    assert not offenders, f"only server (and bench, which runs it) may import server: {offenders}"


def _foreign_imports(paths: list[Path]) -> list[str]:
    """Imports of anything but the standard library, paho and homesim itself."""
    allowed = set(sys.stdlib_module_names) | HOMESIM_LIBRARIES | {"homesim", "__future__"}
    return [
        f"{path.name}:{line} imports {module}"
        for path in paths
        for line, module, _ in _imports(path)
        if module.split(".")[0] not in allowed
    ]


def test_homesim_imports_only_the_standard_library_paho_and_itself() -> None:
    """The simulated firmware is written from docs/mqtt.md: no Vaki package, no server library."""
    offenders = _foreign_imports(_modules("homesim"))
    assert not offenders, f"homesim must stand on docs/mqtt.md alone: {offenders}"


def test_only_server_imports_homesim() -> None:
    offenders = [where for where in _importers("homesim") if not where.startswith("server/")]
    assert not offenders, f"only server may run the simulated homes: {offenders}"


def test_only_the_cli_imports_bench() -> None:
    offenders = [where for where in _importers("bench") if not where.startswith(BENCH_IMPORTERS)]
    assert not offenders, f"only the `vaki bench` commands may import bench: {offenders}"
    assert _importers("bench"), "the `vaki bench` commands import bench"


def test_bench_stays_out_of_the_wheel_and_homesim_goes_in() -> None:
    """The wheel ships the product and the simulated homes of the demo, not the benchmarks."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    assert shipped == set(PACKAGES) - {"bench"}


def test_layout_check_catches_a_violation(tmp_path: Path) -> None:
    """The checker itself sees a deep import, so the test above can fail."""
    bad = tmp_path / "bad.py"
    bad.write_text("from devices.models import Device\nimport server.app\nimport json\n")
    modules = [module for _, module, _ in _imports(bad)]
    assert modules == ["devices.models", "server.app", "json"]
    # homesim's stricter rule sees both product imports and lets the standard library by.
    assert _foreign_imports([bad]) == [
        "bad.py:1 imports devices.models",
        "bad.py:2 imports server.app",
    ]


# One role per file: a product module over this many lines does several jobs.
MAX_MODULE_LINES = 600
# Modules allowed over the limit, each with its one-line reason.
LONG_MODULES: dict[str, str] = {
    "homesim/device.py": "one virtual device: connect, outbox, resend and Last Will read as one",
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


# Where the web layer still runs queries of its own, and how many places, while they move
# into the domains' services. The count may only go down; a module not listed has none.
WEB_QUERIES_NOT_YET_MOVED: dict[str, int] = {
    # Staff sign-in and console sessions: they move to care (which owns sessions and login
    # attempts); the atomic sign-in limits added their queries here, to move with them.
    "sessions.py": 30,
    # Console pages whose reads have not moved into the services yet (their writes have,
    # but for the ones counted here).
    "console_plans.py": 8,
    "console_policy.py": 10,
    "console_residents.py": 13,
}
# Calls on a database session that query or write rows.
_SESSION_CALLS = {"exec", "execute", "get", "add", "add_all", "delete", "commit", "flush", "merge"}
_QUERY_BUILDERS = {"select", "insert", "update", "delete"}


def _web_queries(path: Path) -> list[str]:
    """Each place a web module builds a query or calls a session to read or write rows."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            builders = {a.name for a in node.names} & _QUERY_BUILDERS
            if top in ("sqlmodel", "sqlalchemy") and builders:
                found.append(f"{path.name}:{node.lineno} imports {sorted(builders)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _SESSION_CALLS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "session"
        ):
            found.append(f"{path.name}:{node.lineno} session.{node.func.attr}()")
    return found


def test_the_web_layer_runs_no_queries_of_its_own() -> None:
    """Controllers parse, call one service method and render; the services own the rows."""
    problems = []
    for path in _modules("web"):
        found = _web_queries(path)
        allowed = WEB_QUERIES_NOT_YET_MOVED.get(path.name, 0)
        if len(found) > allowed:
            problems.append(f"{path.name}: {len(found)} query places (at most {allowed}):")
            problems.extend(f"  {place}" for place in found)
    assert not problems, "\n".join(problems)

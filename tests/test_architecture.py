"""The package's layout: rooms whose imports run only downward.

docs/ARCHITECTURE.md describes the rooms; this test holds their order and
checks it on the source, so a module that imports from above its room, an
import cycle (imports inside functions included) or a module over 700 lines
fails CI.
"""

import ast
import collections
import pathlib

import keras

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_lottery"

# A room may import from its own room and from rooms of a lower level,
# never from a room of its own level or above.
LEVELS = {
    "base": 0,
    "core": 1, "data": 1, "models": 1,
    "pruning": 2,
    "engine": 3, "serving": 3,
    "lottery": 4,
    "analysis": 5, "tuning": 5,
    "studies": 6,
}
MAX_LINES = 700


def _modules() -> dict[str, pathlib.Path]:
    """`{"keras_lottery.room.module": path}` for every module."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(path: pathlib.Path, modules) -> set[str]:
    """The package's modules `path` imports, at any depth of its code."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and (
                node.module.split(".")[0] == "keras_lottery"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                imported.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names
                         if alias.name.split(".")[0] == "keras_lottery"}
    return imported


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_lives_in_a_known_room():
    rooms = {_room(m) for m in _modules()} - {None}
    assert rooms == set(LEVELS)
    flat = [m for m, p in _modules().items()
            if _room(m) is not None and p.parent == PACKAGE]
    assert not flat, f"modules outside any room: {flat}"


def test_imports_run_only_downward():
    wrong = []
    for module, imported in _graph().items():
        room = _room(module)
        if room is None:  # keras_lottery/__init__.py: the public names
            continue
        for target in imported:
            other = _room(target)
            if other is None:
                wrong.append(f"{module} imports the package itself")
            elif other != room and LEVELS[other] >= LEVELS[room]:
                wrong.append(f"{module} ({room}) imports {target} ({other})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle_counting_imports_inside_functions():
    graph = _graph()
    state = collections.defaultdict(int)  # 0 new, 1 on the path, 2 done
    path = []

    def visit(module):
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state[target] == 1:
                cycle = path[path.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if state[target] == 0 and target in graph:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module)


def test_no_module_over_700_lines():
    long = {m: n for m, p in _modules().items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_registered_names_are_those_written_before_the_move():
    # `.keras` files name these classes; they must never change.
    import keras_lottery

    assert keras.saving.get_registered_name(keras_lottery.MaskedWrapper) == (
        "keras_lottery>MaskedWrapper")
    assert keras.saving.get_registered_name(
        keras_lottery.models.BiasPrunableDense) == (
        "keras_lottery>BiasPrunableDense")

"""The package's shape: no import cycles (function-local imports count too), no overlong module or
function, and no pointer to a file outside the repository."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "symtune"
MAX_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_EVALUATE_LINES = 300
# Modules over MAX_LINES whose split is not done yet, each with its reason. The test fails once one
# fits, so that the entry is dropped instead of left to hide a regrowth.
OVERLONG: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, modules: set[str]) -> set[str]:
    """symtune modules an AST imports anywhere (top level or inside a function). `from symtune.x
    import y` counts as importing symtune.x.y where that is a module, else symtune.x."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(ast.parse(p.read_text(encoding="utf-8")), modules) - {module_name(p)}
            for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state, stack = {}, []  # state: 1 on the stack, 2 done

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_reads_local_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    from symtune.x import y\n    import symtune.z\n")
    assert imported_modules(tree, {"symtune.x", "symtune.x.y", "symtune.z"}) == {"symtune.x.y", "symtune.z"}


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "symtune.evaluate" in graph and graph["symtune.cli"]  # the walk found the package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_no_module_is_overlong_and_evaluate_is_lean():
    lengths = {p.relative_to(PACKAGE.parent).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
               for p in PACKAGE.rglob("*.py")}
    assert {path for path, n in lengths.items() if n > MAX_LINES} == set(OVERLONG)
    assert lengths["symtune/evaluate.py"] <= MAX_EVALUATE_LINES


def overlong_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(name, lines) of every function or method in `source` longer than `limit` lines, decorators
    not counted, its docstring counted."""
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= limit]


def test_the_function_length_check_counts_lines_from_def_to_the_end():
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES - 1))
    assert overlong_functions("def fits():\n" + body) == []
    method = "class A:\n    def long(self):\n" + body.replace("    ", "        ") + "        y = 0\n"
    assert overlong_functions(method) == [("long", MAX_FUNCTION_LINES + 1)]


def test_no_function_is_over_sixty_lines():
    found = {f"{p.relative_to(REPO).as_posix()}: {name} ({n} lines)"
             for p in PACKAGE.rglob("*.py") for name, n in overlong_functions(p.read_text(encoding="utf-8"))}
    assert not found, "split these into named helpers: " + ", ".join(sorted(found))


def test_nothing_points_at_the_spec_outside_the_repository():
    """Method decisions live in docs/method.md; a comment citing a file the repository does not hold
    cannot be checked by a reader."""
    spec = "papers" + ".md"  # spelled apart so that this file does not match itself in a grep
    files = [p for top in ("symtune", "scripts", "benchmarks", "docs") for p in (REPO / top).rglob("*")
             if p.is_file() and p.suffix in {".py", ".md", ".yaml", ".yml", ".json", ".toml", ".txt", ".cfg"}]
    files += [REPO / "README.md", REPO / "pyproject.toml", REPO / "Makefile"]
    assert any(p.name == "prompts.py" for p in files)  # the walk found the package
    assert [p.relative_to(REPO).as_posix() for p in files if spec in p.read_text(encoding="utf-8")] == []


def test_every_pytest_raises_names_the_error_it_expects():
    """A bare pytest.raises passes on any error of that type, including the wrong one."""
    bare = []
    for path in sorted(REPO.joinpath("tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "raises"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "pytest"
                    and not any(k.arg == "match" for k in node.keywords)):
                bare.append(f"{path.name}:{node.lineno}")
    assert bare == []

"""Mutation score of the fast in-process tests over the numeric code (issue 12).

Usage::

    python bench/mutation_score.py [--target PATH ...] [--list] [--json FILE] [--limit N]

For every target module the script enumerates the standard first-order mutants with ``ast``
(one mutation per mutant):

* arithmetic: ``+ <-> -``, ``* <-> /``, ``// -> /``, ``** -> *``, ``% -> *``, ``& <-> |``, in
  expressions and augmented assignments;
* comparisons: ``< <-> <=``, ``> <-> >=``, ``== <-> !=``, ``is <-> is not``, ``in <-> not in``;
* boolean: ``and <-> or``; ``not x -> x``; ``-x -> x``; ``True <-> False``;
* numbers: ``n -> n + 1`` (ints and floats, as mutmut does).

Docstrings, type annotations, f-strings, exception messages (the arguments of ``raise``), the
arguments of progress and logging calls, and lines marked ``# pragma: no mutate`` are not
mutated: they are not math, and their mutants are harmless by construction.

The script imports the targets and their test modules once, then forks one child per mutant
(one at a time: the child patches the ``__code__`` of the functions the mutant changes, in place,
so every reference to them sees the mutant, and runs the target's test files with
``pytest -x``). Only fast tests run: tests that need worker processes (fixtures ``workers``,
``ctx``, ``fed_ctx``, or the ``federated`` mode) are deselected, and so is the ``local`` mode
(numpy input is wrapped in a local matrix: the same code); the math is the same code on numpy
and federated input. ``--sample N`` takes every N-th mutant; ``--retest JSON`` reruns only the
survivors of an earlier run; ``--named`` replays ``NAMED_MUTANTS``.

A mutant is *killed* when a test fails or it runs past a timeout (3x the unmutated run plus
10 s), else it *survives*. It prints a per-module table and every survivor with its line.

Run it with one process (``OMP_NUM_THREADS=1`` is set here before numpy is imported).
"""

from __future__ import annotations

import argparse
import ast
import glob
import importlib
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parent.parent

# target source file -> (module name, test file globs, relative to the repository root)
_ALGORITHMS = "tests/algorithms/test_{}*.py"
_LAYER_TESTS = ("tests/nn/test_layer*.py", "tests/nn/test_models.py")
_SERVER_TESTS = ("tests/paramserv/test_server*.py", "tests/paramserv/test_local_steps.py")
TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "algorithms/lm.py": ("fedla.algorithms.lm", (_ALGORITHMS.format("lm"),)),
    "algorithms/l2svm.py": ("fedla.algorithms.l2svm", (_ALGORITHMS.format("l2svm"),)),
    "algorithms/mlogreg.py": ("fedla.algorithms.mlogreg", (_ALGORITHMS.format("mlogreg"),)),
    "algorithms/kmeans.py": ("fedla.algorithms.kmeans", (_ALGORITHMS.format("kmeans"),)),
    "algorithms/pca.py": ("fedla.algorithms.pca", (_ALGORITHMS.format("pca"),)),
    "algorithms/design_matrix.py": (
        "fedla.algorithms.design_matrix",
        tuple(_ALGORITHMS.format(a) for a in ("lm", "l2svm", "mlogreg")),
    ),
    **{
        f"algorithms/nn/layers/{name}.py": (f"fedla.algorithms.nn.layers.{name}", _LAYER_TESTS)
        for name in ("affine", "avg_pool2d", "batch_norm1d", "batch_norm2d", "conv2d",
                     "cross_entropy_loss", "dropout", "im2col", "l2_loss", "l2_reg",
                     "max_pool2d", "relu", "sigmoid", "softmax", "tanh")
    },
    **{
        f"algorithms/nn/optim/{name}.py": (
            f"fedla.algorithms.nn.optim.{name}", ("tests/nn/test_optim*.py",)
        )
        for name in ("sgd", "sgd_momentum", "sgd_nesterov", "adagrad", "rmsprop", "adam")
    },
    **{
        f"runtime/paramserv/{name}.py": (f"fedla.runtime.paramserv.{name}", _SERVER_TESTS)
        for name in ("aggregation", "policies", "server")
    },
}

# bugs that the suite once let through (issue 12), as (target, original text, mutant text)
NAMED_MUTANTS = [
    ("algorithms/kmeans.py",
     "best = successful[np.flatnonzero(wcss[successful] <= best_wcss * (1 + 1e-9))[0]]",
     "best = successful[-1]",
     "kmeans returns the last successful run instead of the best"),
    ("algorithms/mlogreg.py",
     "    if icpt:\n        lam[-1] = 0.0",
     "    if icpt and K == 1:\n        lam[-1] = 0.0",
     "mlogreg regularizes the intercepts when there are more than 2 classes"),
    ("runtime/paramserv/server.py",
     "self.model = add(self.model, averaged)",
     "self.model = add(self.model, [a * len(updates) for a in averaged])",
     "BSP sums the FedAvg deltas of a round instead of averaging them"),
]

# calls whose arguments only report (progress bars, logs, warnings' wording)
REPORTING_CALLS = {"step", "note", "report", "debug", "info", "warning", "warn_not_converged",
                   "set_postfix", "write"}
WORKER_FIXTURES = {"workers", "ctx", "fed_ctx", "scattered"}

_BINOP_SWAPS = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div, ast.Pow: ast.Mult, ast.Mod: ast.Mult,
    ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
}
_CMP_SWAPS = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_SYMBOLS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Pow: "**",
    ast.Mod: "%", ast.BitAnd: "&", ast.BitOr: "|", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
    ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not",
    ast.In: "in", ast.NotIn: "not in", ast.And: "and", ast.Or: "or",
}


@dataclass
class Mutant:
    """One first-order mutation: the ``index``-th mutation site's ``variant`` in ``path``."""

    path: str
    index: int
    line: int
    description: str
    status: str = ""


def _skipped_nodes(tree: ast.AST, source_lines: list[str]) -> set[int]:
    """ids of the nodes that are not mutated (docstrings, annotations, messages, reports)."""
    skipped: set[int] = set()

    def skip(node: ast.AST | None) -> None:
        if node is not None:
            skipped.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
            body[0].value, ast.Constant
        ):
            skip(body[0])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            skip(node.returns)
            for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs,
                        node.args.vararg, node.args.kwarg):
                if arg is not None:
                    skip(arg.annotation)
        elif isinstance(node, ast.AnnAssign):
            skip(node.annotation)
        elif isinstance(node, ast.JoinedStr):
            skip(node)
        elif isinstance(node, ast.Raise):
            skip(node.exc)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in REPORTING_CALLS:
                for arg in (*node.args, *node.keywords):
                    skip(arg)
        lineno = getattr(node, "lineno", None)
        if lineno is not None and "pragma: no mutate" in source_lines[lineno - 1]:
            skip(node)
    return skipped


def _sites(tree: ast.AST, source_lines: list[str]) -> list[tuple[ast.AST, int, str]]:
    """Every (node, variant, description) that a mutant changes, in a deterministic order."""
    skipped = _skipped_nodes(tree, source_lines)
    sites: list[tuple[ast.AST, int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _BINOP_SWAPS:
            new = _BINOP_SWAPS[type(node.op)]
            sites.append((node, 0, f"`{_SYMBOLS[type(node.op)]}` -> `{_SYMBOLS[new]}`"))
        elif isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _CMP_SWAPS:
                    new = _CMP_SWAPS[type(op)]
                    sites.append((node, i, f"`{_SYMBOLS[type(op)]}` -> `{_SYMBOLS[new]}`"))
        elif isinstance(node, ast.BoolOp):
            new = ast.Or if isinstance(node.op, ast.And) else ast.And
            sites.append((node, 0, f"`{_SYMBOLS[type(node.op)]}` -> `{_SYMBOLS[new]}`"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            sites.append((node, 0, "`not x` -> `x`" if isinstance(node.op, ast.Not)
                          else "`-x` -> `x`"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            sites.append((node, 0, f"`{node.value}` -> `{not node.value}`"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            sites.append((node, 0, f"`{node.value!r}` -> `{node.value + 1!r}`"))
    return sites


class _Apply(ast.NodeTransformer):
    """Apply the mutation of one site (found by the id of its node in the original tree)."""

    def __init__(self, target: ast.AST, variant: int) -> None:
        self.target, self.variant = target, variant

    def visit(self, node: ast.AST) -> ast.AST:
        if node is not self.target:
            return self.generic_visit(node)
        if isinstance(node, (ast.BinOp, ast.AugAssign)):
            node.op = _BINOP_SWAPS[type(node.op)]()
        elif isinstance(node, ast.Compare):
            node.ops[self.variant] = _CMP_SWAPS[type(node.ops[self.variant])]()
        elif isinstance(node, ast.BoolOp):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif isinstance(node, ast.UnaryOp):
            return node.operand
        elif isinstance(node.value, bool):
            node.value = not node.value
        else:
            node.value = node.value + 1
        return node


def enumerate_mutants(path: str) -> list[Mutant]:
    source = (REPO / path).read_text()
    tree = ast.parse(source)
    return [Mutant(path, i, getattr(node, "lineno", 0), description)
            for i, (node, _, description) in enumerate(_sites(tree, source.splitlines()))]


def mutated_code(path: str, index: int):
    """The compiled module with mutation site ``index`` applied, and the module-level names
    that the mutated statement assigns (when it is not inside a function or class)."""
    source = (REPO / path).read_text()
    tree = ast.parse(source)
    node, variant, _ = _sites(tree, source.splitlines())[index]
    assigned: list[str] = []
    for statement in tree.body:
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) and any(
            n is node for n in ast.walk(statement)
        ):
            targets = statement.targets if isinstance(statement, ast.Assign) else [
                statement.target]
            assigned = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    tree = ast.fix_missing_locations(_Apply(node, variant).visit(tree))
    return compile(tree, str(REPO / path), "exec"), assigned


def named_mutant_code(path: str, original: str, mutant: str):
    """The compiled module with ``original`` (which must occur once) replaced by ``mutant``."""
    source = (REPO / path).read_text()
    if source.count(original) != 1:
        raise SystemExit(f"{path}: the named mutant's original text is not there once: "
                         f"{original!r}")
    return compile(source.replace(original, mutant), str(REPO / path), "exec"), []


def _patch(module, code, assigned: list[str]) -> int:
    """Run the mutated module in a scratch namespace; move changed code and the module-level
    names the mutant assigns into ``module``."""
    namespace = {"__name__": module.__name__, "__file__": module.__file__,
                 "__package__": module.__package__}
    exec(code, namespace)  # noqa: S102 - the mutant of a repository file
    changed = 0

    def move(old, new) -> int:
        if not hasattr(new, "__code__"):
            return 0
        if old.__code__ == new.__code__ and old.__defaults__ == new.__defaults__:
            return 0
        old.__code__, old.__defaults__ = new.__code__, new.__defaults__
        old.__kwdefaults__ = new.__kwdefaults__
        return 1

    for name, old in list(vars(module).items()):
        new = namespace.get(name)
        if new is None:
            continue
        if isinstance(old, type) and old.__module__ == module.__name__:
            for attr, value in vars(old).items():
                new_value = vars(new).get(attr)
                for getter in ("__func__", "fget", "fset"):
                    if hasattr(value, getter):
                        value, new_value = getattr(value, getter), getattr(new_value, getter)
                        break
                if hasattr(value, "__code__"):
                    changed += move(value, new_value)
        elif hasattr(old, "__code__") and getattr(old, "__module__", None) == module.__name__:
            changed += move(old, new)
        elif name in assigned:
            setattr(module, name, new)
            changed += 1
    return changed


class _FastTestsOnly:
    """pytest plugin: deselect tests that need worker processes."""

    @staticmethod
    def pytest_collection_modifyitems(config, items):
        keep, drop = [], []
        for item in items:
            params = getattr(getattr(item, "callspec", None), "params", {})
            needs_workers = WORKER_FIXTURES & set(getattr(item, "fixturenames", ()))
            # numpy input is wrapped in a local fl.Matrix, so "numpy" and "local" run the same
            # algorithm code: one of them is enough here
            (drop if needs_workers or params.get("mode") in ("federated", "local")
             else keep).append(item)
        items[:] = keep
        config.hook.pytest_deselected(items=drop)


def _test_files(globs: tuple[str, ...]) -> list[str]:
    """The test files, reference tests first (they are fast and kill most mutants: -x stops
    at the first failure)."""
    files = {f for pattern in globs for f in glob.glob(str(REPO / pattern))}
    return sorted(files, key=lambda f: ("reference" not in f and "forward" not in f
                                        and "aggregation" not in f, f))


def _run_child(module_name: str | None, mutant, files: list[str], timeout: float) -> str:
    """Fork; the child applies the mutant and runs the tests. 'killed', 'survived' or 'timeout'."""
    pid = os.fork()
    if pid == 0:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            import pytest

            if module_name is not None and not _patch(sys.modules[module_name], *mutant):
                os._exit(3)  # the mutant changed nothing that runs
            rc = pytest.main([*files, "-x", "-q", "-p", "no:cacheprovider", "-W",
                              "ignore::pytest.PytestUnraisableExceptionWarning"],
                             plugins=[_FastTestsOnly()])
            os._exit(int(rc))
        except BaseException:  # noqa: BLE001 - any failure of the mutant is a kill
            os._exit(4)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            exit_code = os.waitstatus_to_exitcode(status)
            if exit_code == 3:
                return "unchanged"
            return "survived" if exit_code in (0, 5) else "killed"
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.02)


def _import_targets_and_tests(path: str) -> list[str]:
    """Import ``path``'s module and test modules (once, before forking); its test files."""
    module_name, globs = TARGETS[path]
    importlib.import_module(module_name)
    files = _test_files(globs)
    for f in files:
        importlib.import_module(".".join(Path(f).relative_to(REPO).with_suffix("").parts))
    return files


def _run_named() -> None:
    for path, original, mutant, description in NAMED_MUTANTS:
        files = _import_targets_and_tests(path)
        status = _run_child(TARGETS[path][0], named_mutant_code(path, original, mutant), files,
                            timeout=1800)
        print(f"{status:>8}: {description} ({path})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", help="target file(s); default: all")
    parser.add_argument("--list", action="store_true", help="only list the mutants")
    parser.add_argument("--json", help="write every mutant and its status to this file")
    parser.add_argument("--limit", type=int, default=0, help="at most this many mutants/target")
    parser.add_argument("--sample", type=int, default=1, metavar="N",
                        help="only every N-th mutant of each target (a deterministic sample)")
    parser.add_argument("--retest", metavar="JSON",
                        help="rerun only the survivors of an earlier --json run (same sources); "
                             "its other statuses are carried over")
    parser.add_argument("--named", action="store_true",
                        help="only run the named mutants of NAMED_MUTANTS (bugs once missed)")
    args = parser.parse_args()
    targets = args.target or list(TARGETS)
    sys.path.insert(0, str(REPO))
    if args.named:
        _run_named()
        return

    previous = {}
    if args.retest:
        previous = {(m["path"], m["index"]): m for m in json.loads(Path(args.retest).read_text())}
    rows, mutants_all = [], []
    started = time.monotonic()
    for path in targets:
        module_name = TARGETS[path][0]
        mutants = enumerate_mutants(path)
        mutants = mutants[:: args.sample]
        if args.limit:
            mutants = mutants[: args.limit]
        if args.list:
            for m in mutants:
                print(f"{path}:{m.line}: {m.description}")
            continue
        files = _import_targets_and_tests(path)
        t0 = time.monotonic()
        baseline = _run_child(None, None, files, timeout=1800)
        baseline_s = time.monotonic() - t0
        if baseline != "survived":
            raise SystemExit(f"{path}: the unmutated tests fail ({files}); fix them first")
        t_target = time.monotonic()
        for m in mutants:
            before = previous.get((path, m.index))
            if before is not None:
                same_mutant = before["description"] == m.description and before["line"] == m.line
                if same_mutant and before["status"] != "survived":
                    m.status = before["status"]
                    continue
            m.status = _run_child(module_name, mutated_code(path, m.index), files,
                                  timeout=3 * baseline_s + 10)
        counts = {s: sum(m.status == s for m in mutants)
                  for s in ("killed", "timeout", "survived", "unchanged")}
        scored = counts["killed"] + counts["timeout"] + counts["survived"]
        score = (counts["killed"] + counts["timeout"]) / scored if scored else 1.0
        rows.append((path, len(mutants), counts, score, time.monotonic() - t_target))
        mutants_all.extend(mutants)
        print(f"{path}: {len(mutants)} mutants, {counts}, score {score:.1%}, "
              f"tests {baseline_s:.1f}s, {time.monotonic() - t_target:.0f}s", flush=True)
        for m in mutants:
            if m.status == "survived":
                print(f"  survived: {path}:{m.line}: {m.description}", flush=True)
        if args.json:  # after every target, so a long run can be read while it goes on
            Path(args.json).write_text(json.dumps([asdict(m) for m in mutants_all], indent=1))
    if args.list:
        return
    total = sum(r[1] - r[2]["unchanged"] for r in rows)
    killed = sum(r[2]["killed"] + r[2]["timeout"] for r in rows)
    print("\n| module | mutants | killed | timeout | survived | score | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path, n, c, score, seconds in rows:
        print(f"| {path} | {n - c['unchanged']} | {c['killed']} | {c['timeout']} | "
              f"{c['survived']} | {score:.1%} | {seconds:.0f} |")
    print(f"| **total** | {total} | {killed} (incl. timeouts) | | {total - killed} | "
          f"{killed / max(total, 1):.1%} | {time.monotonic() - started:.0f} |")
    print("\nSurvivors:")
    for m in mutants_all:
        if m.status == "survived":
            print(f"- {m.path}:{m.line}: {m.description}")


if __name__ == "__main__":
    main()

"""The functions a worker's EXEC_UDF may call: registered explicitly, by reference.

A package makes a function remotely callable by decorating it::

    from fedla.runtime.udf_registry import remote_function

    @remote_function
    def gradients(model, hyperparams, features, labels): ...

which registers it as ``"package.module:gradients"``. A worker calls only registered functions
of the packages its operator allowed (``fedla.algorithms`` by default, more with
``fedla worker --allow-module PKG``; importing the package registers its functions), never any
other public name of those packages. ``fedla worker --list-udfs`` prints what is callable.

A registered function is called with arrays and plain values a remote caller chose, so it must
not take paths, directories, file names or process counts: its parameters are checked against
``FORBIDDEN_PARAMETERS`` when it is registered.

A function that calls other functions (the site side of federated training calls the model's
``upd`` and ``agg``) names those parameters as callbacks::

    @remote_function(callbacks=("upd", "agg"))
    def train(features, labels, *model, upd, agg, hyperparams): ...

The caller sends each callback as a ``"module:function"`` reference; the worker resolves it
through the same allow-list as EXEC_UDF itself, so a callback is never more than another
registered function of an allowed package.
"""

from __future__ import annotations

import importlib
import inspect
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

FORBIDDEN_PARAMETERS = re.compile(
    r"(^|_)(path|paths|dir|dirs|directory|file|files|filename|checkpoint|resume|k|"
    r"processes|n_jobs|workers|threads)($|_)"
)
"""Parameter names a remote function may not have: they would let a caller pick files on the
worker's disk or how many processes it starts."""

_FUNCTIONS: dict[str, Callable[..., Any]] = {}
_CALLBACKS: dict[str, tuple[str, ...]] = {}
_LOCK = threading.Lock()


def reference_of(function: Callable[..., Any]) -> str:
    """``"package.module:name"``, the reference a caller sends in EXEC_UDF."""
    return f"{function.__module__}:{function.__qualname__}"


@overload
def remote_function(function: F, *, callbacks: tuple[str, ...] = ()) -> F: ...


@overload
def remote_function(*, callbacks: tuple[str, ...] = ()) -> Callable[[F], F]: ...


def remote_function(function: F | None = None, *, callbacks: tuple[str, ...] = ()
                    ) -> F | Callable[[F], F]:
    """Register ``function`` as callable by EXEC_UDF under ``reference_of(function)``.

    Used bare (``@remote_function``) or with the names of parameters that take other remote
    functions by reference (``@remote_function(callbacks=("upd", "agg"))``).

    Raises
    ------
    TypeError
        When ``function`` is not a plain module-level function, takes a parameter that names a
        path, a directory, a file or a process count (``FORBIDDEN_PARAMETERS``), or names a
        callback it has no keyword parameter for.
    """
    if function is None:
        return lambda f: remote_function(f, callbacks=callbacks)
    if not inspect.isfunction(function) or "." in function.__qualname__:
        raise TypeError(
            f"remote_function registers module-level functions only. Got {function!r} instead."
        )
    reference = reference_of(function)
    parameters = inspect.signature(function).parameters
    bad = [p for p in parameters if FORBIDDEN_PARAMETERS.search(p)]
    if bad:
        raise TypeError(
            f"{reference} cannot be a remote function: its parameter(s) {bad} would let a "
            "remote caller choose paths, files or process counts at the worker; take them from "
            "the worker's own configuration instead"
        )
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    missing = [c for c in callbacks if c not in parameters or parameters[c].kind not in keyword]
    if missing:
        raise TypeError(f"{reference} names callbacks {missing} but has no such keyword parameter")
    with _LOCK:
        _FUNCTIONS[reference] = function
        _CALLBACKS[reference] = tuple(callbacks)
    return function


def callbacks_of(reference: str) -> tuple[str, ...]:
    """The parameters of registered function ``reference`` that take function references."""
    with _LOCK:
        return _CALLBACKS.get(reference, ())


def registered_function(reference: str, packages: Iterable[str]) -> Callable[..., Any] | None:
    """The function registered as ``reference`` if its module is in ``packages``, else None.

    One lookup: a worker resolves a training call's function and callbacks on every round.
    """
    with _LOCK:
        function = _FUNCTIONS.get(reference)
    if function is None or not in_packages(reference.partition(":")[0], packages):
        return None
    return function


def registered_functions(packages: Iterable[str] | None = None) -> dict[str, Callable[..., Any]]:
    """The registered functions (of ``packages`` and their subpackages), sorted by reference."""
    with _LOCK:
        items = sorted(_FUNCTIONS.items())
    if packages is None:
        return dict(items)
    prefixes = tuple(packages)
    return {ref: fn for ref, fn in items if in_packages(ref.partition(":")[0], prefixes)}


def in_packages(module_name: str, packages: Iterable[str]) -> bool:
    """Whether ``module_name`` is one of ``packages`` or inside one of them."""
    return any(module_name == p or module_name.startswith(p + ".") for p in packages)


def import_packages(packages: Iterable[str]) -> None:
    """Import ``packages`` so that their ``@remote_function`` decorators run.

    Raises ``ImportError`` (with the package named) when one cannot be imported.
    """
    for package in packages:
        importlib.import_module(package)


def describe_functions(packages: Iterable[str]) -> list[str]:
    """One line per registered function of ``packages``: reference, signature, summary."""
    lines = []
    for reference, function in registered_functions(packages).items():
        summary = (inspect.getdoc(function) or "").partition("\n")[0]
        parameters = ", ".join(
            str(p.replace(annotation=inspect.Parameter.empty))
            for p in inspect.signature(function).parameters.values()
        )
        lines.append(f"{reference}({parameters})  {summary}".rstrip())
    return lines or [f"no registered functions in {', '.join(packages) or 'no package'}"]

"""The train function as autolr calls it: its signature, each trial's call, its import path.

* :class:`Target` checks once that the function takes ``lr`` and what else it accepts
  (``trial``, ``seed``, ``**kwargs``), checks ``run(**kwargs)`` against it, and makes each
  trial's call;
* :func:`locate` names the function for another process and :func:`import_spec` imports it
  there (a lambda or a closure cannot cross a process boundary).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import SupportsInt

import optuna

from autolr._schema import PARAM

_importing: str | None = None  # the spec being imported for a worker (guards run() at import)


@dataclass(frozen=True)
class Target:
    """A train function and what its signature accepts."""

    fn: Callable[..., object]
    params: Mapping[str, inspect.Parameter]
    var_kw: bool

    @classmethod
    def of(cls, fn: Callable[..., object]) -> Target:
        """Check that ``fn`` accepts ``lr`` as a keyword; a one-line TypeError naming ``tune``."""
        sig = inspect.signature(fn)
        params = sig.parameters
        var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        lr = params.get(PARAM)
        if (lr is None and not var_kw) or (lr is not None and lr.kind is lr.POSITIONAL_ONLY):
            raise TypeError(
                f"tune: the train function {fn.__qualname__}() must accept a keyword argument "
                f"'lr' (the learning rate autolr samples), got parameters {sig}"
            )
        return cls(fn, params, var_kw)

    @property
    def qualname(self) -> str:
        return self.fn.__qualname__

    @property
    def accepts_seed(self) -> bool:
        return "seed" in self.params

    @property
    def default_lr(self) -> float | None:
        """The function's own default learning rate (``def train(lr=1.0)``), if it has one.

        autolr's search measures it next to 1e-3 and centres its first grid between them.
        """
        param = self.params.get(PARAM)
        default = None if param is None else param.default
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            return None
        value = float(default)
        return value if value > 0 and value == value and value != float("inf") else None

    def check_kwargs(self, kwargs: Mapping[str, object]) -> None:
        """Refuse ``run(**kwargs)`` that set ``lr``/``trial`` or name no parameter of the function."""
        reserved = {PARAM, "trial"} & set(kwargs)
        if reserved:
            raise TypeError(
                f"run: {sorted(reserved)} are set by autolr on every trial; do not pass them to run()"
            )
        unknown = [k for k in kwargs if k not in self.params and not self.var_kw]
        if unknown:
            raise TypeError(
                f"run: {self.qualname}() has no parameter {unknown[0]!r} "
                f"(parameters: {', '.join(self.params)})"
            )

    def base_seed(self, kwargs: Mapping[str, object]) -> int:
        """The seed ordinary trials train with (re-checks use the next ones)."""
        param = self.params.get("seed")
        default = param.default if param is not None else 0
        base = kwargs.get("seed", default if isinstance(default, int) else 0)
        return int(base) if isinstance(base, SupportsInt) else int(str(base))

    def call(
        self, trial: optuna.Trial, lr: float, kwargs: Mapping[str, object], seed: int | None
    ) -> object:
        """Run the function for one trial: ``kwargs``, the trial's ``lr``, and ``seed``/``trial``."""
        call_kwargs = dict(kwargs)
        call_kwargs[PARAM] = lr
        if seed is not None:
            call_kwargs["seed"] = seed
        if "trial" in self.params:
            call_kwargs["trial"] = trial
        return self.fn(**call_kwargs)


# ----------------------------------------------------------------------------- other processes


def locate(fn: Callable[..., object], holder: object) -> str:
    """``"path/to/file.py:name"`` or ``"package.module:name"``: where ``holder`` (the decorated
    ``fn``) is a module-level name another process can import."""
    qual = getattr(fn, "__qualname__", "") or ""
    if "<lambda>" in qual or "<locals>" in qual:
        raise TypeError(
            f"workers: {qual}() is a lambda or a function defined inside another function; "
            "worker processes import the train function by module and name, so define it at module "
            "level (decorated with @autolr.tune), or use n_jobs= to run threads in this process"
        )
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    names = [k for k, v in vars(module).items() if v is holder] if module is not None else []
    if module is None or not names:
        raise TypeError(
            f"workers: cannot find {qual}() as a module-level name of {fn.__module__!r}; worker "
            "processes import it by name, so assign the decorated function at module level "
            "(`train = autolr.tune(...)(fn)` or `@autolr.tune` on a def), or use n_jobs="
        )
    name = fn.__name__ if fn.__name__ in names else names[0]
    if module.__name__ in ("__main__", "__mp_main__"):
        path = getattr(module, "__file__", None)
        if not path:
            raise TypeError(
                "workers: the train function was defined interactively (a notebook or the REPL), "
                "so other processes cannot import it; move it to a .py file, or use n_jobs= "
                "(threads) here"
            )
        return f"{os.path.abspath(path)}:{name}"
    return f"{module.__name__}:{name}"


def check_importable(spec: str) -> None:
    """Refuse, in the parent, a script's train function that an importing worker would not find.

    A worker imports the script without running its ``if __name__ == "__main__":`` block, so a
    function decorated inside it (or defined by ``exec``) exists only here: a one-line TypeError
    now instead of every worker failing with "has no attribute" later.
    """
    target, _, name = spec.rpartition(":")
    if not _is_path(target):
        return  # a package module, found in sys.modules by locate(): importable as is
    try:
        tree = ast.parse(Path(target).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return  # the worker's import will say what is wrong with the file
    if name not in _module_names(tree.body):
        raise TypeError(
            f"workers: {name!r} is not defined at module level of {target} (it is made under "
            "`if __name__ == \"__main__\":` or at run time), and worker processes import that "
            f"file without running that block; decorate `{name}` at module level, or use n_jobs="
        )


def _is_main_guard(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _module_names(body: list[ast.stmt]) -> set[str]:
    """Names a module binds when it is imported (main-guarded blocks skipped)."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.If):
            if not _is_main_guard(node.test):
                names |= _module_names(node.body)
            names |= _module_names(node.orelse)
        elif isinstance(node, (ast.Try, ast.With, ast.For, ast.While)):
            for field in ("body", "orelse", "finalbody"):
                names |= _module_names(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                names |= _module_names(handler.body)
    return names


def import_spec(spec: str) -> object:
    """Import ``path/to/train.py:train`` or ``package.module:train`` and return that object.

    A script is loaded under the name ``__mp_main__`` (as multiprocessing does), so its
    ``if __name__ == "__main__":`` block does not run.
    """
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise ValueError(
            f"worker: expected 'path/to/train.py:function' or 'package.module:function', got {spec!r}"
        )
    global _importing
    _importing = spec
    try:
        module = _import_script(target) if _is_path(target) else _import_module(target)
    finally:
        _importing = None
    obj = getattr(module, name, None)
    if obj is None:
        raise AttributeError(f"worker: {target!r} has no attribute {name!r}")
    return obj


def _is_path(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or "/" in target


def _import_script(target: str) -> ModuleType:
    path = Path(target).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"worker: no such script {target!r}")
    sys.path.insert(0, str(path.parent))
    mod_spec = importlib.util.spec_from_file_location("__mp_main__", path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules["__mp_main__"] = module
    sys.modules["__main__"] = module  # objects pickled from the parent's script resolve
    mod_spec.loader.exec_module(module)
    return module


def _import_module(target: str) -> ModuleType:
    if "" not in sys.path:
        sys.path.insert(0, "")
    return importlib.import_module(target)


def check_not_importing() -> None:
    """Raise when ``run()`` is called while a worker imports the user's script (no main guard)."""
    if _importing is not None:
        raise RuntimeError(
            f"autolr: importing {_importing.rpartition(':')[0]!r} for a worker called .run(); "
            "put the call under `if __name__ == \"__main__\":` so workers can import the script "
            "without starting a study"
        )

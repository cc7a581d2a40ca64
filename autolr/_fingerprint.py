"""What defines a study, stored when it is created, so a resume with other code is not silent.

A study's results only mean something for the train function and ``run(**kwargs)`` that made
them. :meth:`Fingerprint.of` summarises both: a hash of the function's code (its syntax tree,
so comments, formatting, the docstring and the ``@autolr.tune(...)`` line do not count), its
parameter names, and each forwarded keyword (plain values as they are; other objects by type
and shape, since their ``repr`` may change on every run). :func:`changes` says what differs from
the stored one, in words for a one-line error (the lr range and direction are checked by
:mod:`autolr._study` itself).

Example:
    >>> def train(lr, epochs=2):
    ...     return lr * epochs
    >>> a = Fingerprint.of(train, {"epochs": 2})
    >>> changes(a, Fingerprint.of(train, {"epochs": 1}))
    ['run() keyword epochs (2 -> 1)']
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

#: Forwarded values longer than this (as JSON) are stored as a hash.
MAX_VALUE_CHARS = 80


def _code_hash(fn: Callable[..., object]) -> str | None:
    """A short hash of ``fn``'s syntax tree without decorators and docstring; None without source."""
    fn = inspect.unwrap(fn)
    if getattr(fn, "__name__", "") == "<lambda>":  # its source line is not the lambda alone
        return None
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    node = tree.body[0] if tree.body else None
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        node.decorator_list = []
        node.name = ""  # the name is not the code (it is stored as `function`)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            node.body = body[1:] or [ast.Pass()]
    text = ast.dump(tree, annotate_fields=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _plain(value: object) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def describe_value(value: object) -> str:
    """A stable summary of one forwarded keyword: JSON for plain values, else type (and shape).

    Example:
        >>> describe_value(2), describe_value({"a": [1, 2]}), describe_value(object())
        ('2', '{"a": [1, 2]}', '<object>')
    """
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():  # a NumPy or torch scalar
        try:
            value = item()
        except (TypeError, ValueError, RuntimeError):
            pass
    if _plain(value):
        text = json.dumps(value, sort_keys=True)
        if len(text) <= MAX_VALUE_CHARS:
            return text
        return f"<{type(value).__name__} #{hashlib.sha256(text.encode()).hexdigest()[:8]}>"
    kind = type(value).__name__
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) or type(shape).__name__ == "Size":
        return f"<{kind} shape={tuple(int(s) for s in shape or ())}>"
    try:
        return f"<{kind} len={len(value)}>"  # type: ignore[arg-type]
    except TypeError:
        return f"<{kind}>"


@dataclass(frozen=True)
class Fingerprint:
    """The train function's code hash and parameter names, and the forwarded keywords."""

    function: str
    code: str | None
    params: tuple[str, ...]
    kwargs: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, fn: Callable[..., object], kwargs: Mapping[str, object]) -> Fingerprint:
        try:
            params = tuple(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            params = ()
        return cls(
            function=getattr(fn, "__qualname__", type(fn).__name__),
            code=_code_hash(fn),
            params=params,
            kwargs={k: describe_value(v) for k, v in sorted(kwargs.items())},
        )

    def to_json(self) -> str:
        return json.dumps(
            {"function": self.function, "code": self.code, "params": list(self.params),
             "kwargs": dict(self.kwargs)},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: object) -> Fingerprint | None:
        """The stored fingerprint, or None when it is missing or not one autolr wrote."""
        try:
            data = json.loads(text) if isinstance(text, str) else {}
            kwargs = data["kwargs"]
            return cls(
                function=str(data["function"]),
                code=data["code"] if isinstance(data["code"], str) else None,
                params=tuple(str(p) for p in data["params"]),
                kwargs={str(k): str(v) for k, v in kwargs.items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def summary(self) -> str:
        """One short line for ``autolr studies``: ``train@3f2a9c1b0d4e epochs=2``."""
        name = self.function.rsplit(".", 1)[-1]
        parts = [f"{name}@{(self.code or '?')[:8]}"]
        parts += [f"{k}={v}" for k, v in self.kwargs.items()]
        return " ".join(parts)


def changes(stored: Fingerprint, now: Fingerprint) -> list[str]:
    """What differs between the stored fingerprint and this run's, in words (empty: the same)."""
    out: list[str] = []
    if stored.code is not None and now.code is not None and stored.code != now.code:
        out.append(f"the train function's code ({stored.function}: {stored.code[:8]} -> "
                   f"{now.code[:8]})")
    if stored.params != now.params:
        out.append(f"its parameters ({', '.join(stored.params)} -> {', '.join(now.params)})")
    for k in sorted(set(stored.kwargs) | set(now.kwargs)):
        old, new = stored.kwargs.get(k, "unset"), now.kwargs.get(k, "unset")
        if old != new:
            out.append(f"run() keyword {k} ({old} -> {new})")
    return out

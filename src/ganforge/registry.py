"""A tiny name -> builder registry, shared by datasets, models and objectives.

Builders are plain callables. Config sections such as ``{name: dcgan, width: 32}`` are validated
against the builder's signature, so an unknown key or a missing required one is a
:class:`~ganforge.errors.GanforgeError` naming the accepted keys.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from ganforge.errors import GanforgeError

T = TypeVar("T", bound=Callable[..., Any])


class Registry(Generic[T]):
    def __init__(self, kind: str, section: str | None = None) -> None:
        self.kind = kind
        #: the config section its builders' keys live in (``data`` for datasets)
        self.section = section or kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(fn: T) -> T:
            if name in self._items:
                raise RuntimeError(f"{self.kind} {name!r} registered twice")
            self._items[name] = fn
            return fn

        return decorator

    def unregister(self, name: str) -> None:
        """Forget ``name`` (a plug-in registered for a while, e.g. by a test)."""
        self._items.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def get(self, name: str) -> T:
        if not isinstance(name, str):
            raise GanforgeError(f"the {self.kind} name must be a string, got {repr(name)[:40]}",
                                f"choose one of: {', '.join(self.names())}")
        if name not in self._items:
            raise GanforgeError(
                f"unknown {self.kind} {name!r}", f"choose one of: {', '.join(self.names())}"
            )
        return self._items[name]

    def build(self, section: Mapping[str, Any], *args: Any, **extra: Any) -> Any:
        """Call the builder named by ``section['name']`` with the section's other keys."""
        if "name" not in section:
            raise GanforgeError(f"the {self.kind} section has no 'name'", f"add {self.kind}.name")
        kwargs = {k: v for k, v in section.items() if k != "name"}
        builder = self.get(section["name"])
        check_kwargs(builder, kwargs, f"{self.kind} {section['name']!r}", skip=len(args), extra=extra)
        check_types(builder, kwargs, self.section)
        return builder(*args, **kwargs, **extra)


def check_kwargs(
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    what: str,
    skip: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Raise GanforgeError if ``kwargs`` has keys ``fn`` does not accept or lacks required ones."""
    params = list(inspect.signature(fn).parameters.values())[skip:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        user_keys = [a for a in accepted if not extra or a not in extra]
        raise GanforgeError(
            f"unknown key {unknown[0]!r} for {what}",
            f"accepted keys are: name, {', '.join(user_keys)}",
        )
    given = set(kwargs) | set(extra or {})
    missing = [p.name for p in params if p.default is p.empty and p.name in accepted and p.name not in given]
    if missing:
        raise GanforgeError(f"{what} needs key {missing[0]!r}", "set it in the config")


def check_types(fn: Callable[..., Any], kwargs: Mapping[str, Any], section: str) -> None:
    """Raise GanforgeError when a value does not match the builder's type hint (``root: str``
    given ``5``); hints the config checker does not know (``Sequence[int]``...) are the builder's
    own business."""
    from ganforge.config import check_value

    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an unresolvable forward reference: nothing to check against
        return
    for key, value in kwargs.items():
        if key in hints:
            check_value(value, hints[key], f"{section}.{key}")

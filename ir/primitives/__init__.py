"""The primitive set. Importing this package registers every primitive in ``PRIMITIVES``."""

from ..graph import PRIMITIVES, Primitive
from . import _rules, elementwise, reduce, structure  # noqa: F401  (_rules: the rule helpers)
from .barrier import barrier  # noqa: F401
from .elementwise import *  # noqa: F401,F403
from .reduce import *  # noqa: F401,F403
from .structure import *  # noqa: F401,F403

__all__ = ["PRIMITIVES", "Primitive", "elementwise", "reduce", "structure"]

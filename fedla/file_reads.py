"""READ requests as ``Context.federated`` sends them: typed options in, site-named errors out.

Users pass csv options as Python values (``{"header": True}``); the protocol carries strings,
so they are spelled here once. A worker's error names the request and the file but not the
worker itself (it does not know how the coordinator reaches it); ``read_error`` adds the site,
so a failure among many files says where to look.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from fedla.plan import SiteId
from fedla.runtime.errors import FedlaError, InvalidArgumentError
from fedla.runtime.protocol.requests import Read

_WORKER_PREFIX = re.compile(r"^request #\d+ READ '[^']*' -> '[0-9a-f]+': ")


def read_options(options: Mapping[str, object] | None) -> dict[str, str]:
    """The options of a READ as the protocol's strings: bools as ``true``/``false``."""
    spelled: dict[str, str] = {}
    for name, value in (options or {}).items():
        if isinstance(value, bool):
            spelled[name] = "true" if value else "false"
        elif isinstance(value, (str, int)):
            spelled[name] = str(value)
        else:
            raise InvalidArgumentError(
                f"The {name!r} option of federated must be a str, bool or int. Got "
                f"{value!r} instead."
            )
    return spelled


def read_error(error: FedlaError, reads: Sequence[tuple[SiteId, Read]]) -> FedlaError:
    """``error`` of the same class, its message naming the site and file of the failed READ."""
    message = str(error)
    for site, read in reads:
        if f"-> '{read.var}'" in message:
            cause = _WORKER_PREFIX.sub("", message)
            return type(error)(f"READ of {read.path!r} at site {site} failed: {cause}")
    return error

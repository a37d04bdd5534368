"""The one place migrator imports oss2, without paying for the parts of it migrator never uses.

Place in the flow: clients -> oss_sdk -> oss2. `storage.py` (objects) and `replication.py`
(replication rules) take `oss2` from here.

`import oss2` executes the whole SDK, including its client-side encryption (`oss2.crypto`,
`CryptoBucket`), which imports pycryptodome, the Alibaba Cloud core SDK and its KMS requests. That
is about 90 ms of CPU at every start of migrator (measured: `python -c "import oss2"` 0.21 s of
CPU, 0.12 s with the deferral), for code migrator does not call: it reads and writes plain objects.
While oss2 is imported here, those packages are found as usual but their modules are created with
`importlib.util.LazyLoader`: each one runs the first time something reads an attribute of it, so
anything that does use client-side encryption still gets the real modules, only later. Modules
imported before this one (by a test, say) are left as they are.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

DEFERRED_PACKAGES = frozenset({"Crypto", "aliyunsdkcore", "aliyunsdkkms"})


class _DeferringFinder(importlib.abc.MetaPathFinder):
    """Finds modules of DEFERRED_PACKAGES with the other finders and makes their loading lazy."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in DEFERRED_PACKAGES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            if isinstance(spec.loader, importlib.machinery.SourceFileLoader | importlib.machinery.SourcelessFileLoader):
                spec.loader = importlib.util.LazyLoader(spec.loader)
            return spec
        return None


def _import_oss2() -> ModuleType:
    finder = _DeferringFinder()
    sys.meta_path.insert(0, finder)
    try:
        import oss2
    finally:
        sys.meta_path.remove(finder)
    return oss2


if TYPE_CHECKING:  # the type checker reads the module itself (untyped: its names are Any there)
    import oss2
else:
    oss2 = _import_oss2()

"""Every Python started with this folder on PYTHONPATH sees a Parsl with one private name renamed.

RENAMED_PARSL="module:name" (e.g. parsl.executors.flux.executor:_submit_single_job): the module's source
is compiled with that name replaced by name_renamed throughout, as a Parsl release that renamed it would
be; the ranks of stock-path Flux jobs inherit the environment, so they unpickle the same renamed Parsl.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
from collections.abc import Sequence
from types import CodeType, ModuleType


class RenamingLoader(importlib.machinery.SourceFileLoader):
    name_to_rename = ""

    def get_code(self, fullname: str) -> CodeType:
        source = self.get_data(self.path).decode()
        renamed = re.sub(rf"\b{re.escape(self.name_to_rename)}\b", f"{self.name_to_rename}_renamed", source)
        return compile(renamed, self.path, "exec", dont_inherit=True)


class Renaming(importlib.abc.MetaPathFinder):
    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.module:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return None
        loader = RenamingLoader(fullname, spec.origin)
        loader.name_to_rename = self.name
        return importlib.util.spec_from_file_location(fullname, spec.origin, loader=loader)


if os.environ.get("RENAMED_PARSL"):
    _module, _name = os.environ["RENAMED_PARSL"].split(":")
    sys.meta_path.insert(0, Renaming(_module, _name))

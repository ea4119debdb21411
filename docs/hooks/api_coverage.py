"""MkDocs hook: fail the strict build when a public symbol is missing from api.md.

Every name in ``nestopt.__all__`` must appear as ``::: nestopt.NAME`` in
``docs/api.md``, and every public submodule (``nestopt.problems``,
``nestopt.plot``, ``nestopt.autodiff``) as ``::: nestopt.SUBMODULE``. A missing entry
is logged as a warning, which ``mkdocs build --strict`` turns into an error.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import sys
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.api_coverage")

PUBLIC_SUBMODULES = ("problems", "plot", "autodiff")


def on_config(config, **kwargs):
    root = Path(config.config_file_path).parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    nestopt = importlib.import_module("nestopt")
    api = (Path(config.docs_dir) / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^:::\s*nestopt\.([A-Za-z_][\w.]*)", api, flags=re.MULTILINE))
    missing = [name for name in nestopt.__all__ if name not in documented]
    for sub in PUBLIC_SUBMODULES:
        if importlib.util.find_spec(f"nestopt.{sub}") is not None and sub not in documented:
            missing.append(sub)
    for name in missing:
        log.warning(f"public symbol nestopt.{name} is not documented in docs/api.md")
    return config

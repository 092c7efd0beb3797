"""Check a built documentation site: offline maths, no remote scripts, gallery figures.

Usage: ``python scripts/check_docs.py docs/_build/html`` (run by scripts/test.sh
after Sphinx). Exits non-zero with one line per problem.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REMOTE = re.compile(r"""<(?:script|link)[^>]+(?:src|href)=["']https?://""", re.I)
GALLERY = ("plot_cp_hyperspectral", "plot_tt_function", "plot_cp_convergence", "plot_scaling",
           "plot_cli_mpi")


def problems(html: Path) -> list[str]:
    out = []
    pages = sorted(html.rglob("*.html"))
    if not pages:
        return [f"{html}: no HTML pages"]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        if REMOTE.search(text):
            out.append(f"{page}: loads a script or stylesheet from the network")
        if "\\(" in text or "\\[" in text or "mathjax" in text.lower():
            out.append(f"{page}: raw LaTeX or MathJax left in the page")
    for page, least in [("quickstart.html", 1), ("api/cp.html", 5), ("guide/mttkrp.html", 3)]:
        n = (html / page).read_text(encoding="utf-8").count("<math")
        if n < least:
            out.append(f"{page}: {n} MathML formulas, expected at least {least}")
    for name in GALLERY:
        page = html / "generated" / "gallery" / f"{name}.html"
        if not page.is_file():
            out.append(f"{page}: missing")
        elif f"sphx_glr_{name}_001.png" not in page.read_text(encoding="utf-8"):
            out.append(f"{page}: no figure")
    dist = html / "generated" / "tensorpar.distributed.DistTensor.html"
    if "Each rank memory-maps" not in dist.read_text(encoding="utf-8"):
        out.append(f"{dist}: the methods' docstrings are not rendered")
    return out


if __name__ == "__main__":
    found = problems(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_build/html"))
    for line in found:
        print(line)
    print(f"docs check: {len(found)} problem(s)")
    sys.exit(1 if found else 0)

"""Render Sphinx maths as MathML at build time (no JavaScript, no network).

Registers the HTML math renderer ``"mathml"``: every ``:math:`` role and
``.. math::`` block is converted by latex2mathml (pure Python) into a
``<math>`` element that browsers display natively. LaTeX the converter
cannot handle raises a Sphinx warning (an error under ``-W``) naming the
source, so a page never ships raw ``\\(...\\)``.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from latex2mathml.converter import convert
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _mathml(self: Any, node: nodes.Element, latex: str, display: str) -> str:
    try:
        return convert(latex.strip(), display=display)
    except Exception as exc:  # noqa: BLE001 - any converter failure becomes a warning
        logger.warning("cannot convert maths %r to MathML: %s", latex, exc, location=node)
        return self.encode(latex)


def visit_inline(self: Any, node: nodes.Element) -> None:
    self.body.append(self.starttag(node, "span", "", CLASS="math"))
    self.body.append(_mathml(self, node, node.astext(), "inline"))
    self.body.append("</span>")
    raise nodes.SkipNode


def visit_block(self: Any, node: nodes.Element) -> None:
    self.body.append(self.starttag(node, "div", CLASS="math"))
    parts = [p for p in node.astext().split("\n\n") if p.strip()]
    for part in parts:
        latex = part if r"\\" not in part else r"\begin{aligned}" + part + r"\end{aligned}"
        self.body.append(_mathml(self, node, latex, "block"))
    self.body.append("</div>\n")
    raise nodes.SkipNode


def setup(app: Any) -> dict[str, Any]:
    app.add_html_math_renderer("mathml", (visit_inline, None), (visit_block, None))
    return {"parallel_read_safe": True, "parallel_write_safe": True}

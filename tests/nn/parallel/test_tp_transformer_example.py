"""examples/tp_transformer.py --quick under mpiexec (subprocess with a timeout) learns its task."""

from __future__ import annotations

import importlib.util
import re

import pytest

pytest.importorskip("mpi4py")

from mpi_subprocess import ROOT, run_job  # noqa: E402

pytestmark = pytest.mark.mpi

SCRIPT = ROOT / "examples" / "tp_transformer.py"


@pytest.mark.parametrize("layout, n", [("1d", 2), ("rotated", 2), ("tsp", 2), ("summa", 4)])
def test_tp_transformer_quick_learns(tmp_path, serial_only, layout, n):
    if layout == "1d" and importlib.util.find_spec("tensorpar.nn.parallel.transformer") is None:
        pytest.skip("the Megatron block (tensorpar.nn.parallel.transformer) is not in this tree")
    res = run_job(tmp_path, SCRIPT, n=n, timeout=300, args=["--quick", "--layout", layout])
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    epochs = re.findall(r"^epoch\s+\d+\s+loss ([\d.]+)\s+held-out exact match ([\d.]+)", out, re.M)
    assert len(epochs) == 3, out
    assert float(epochs[-1][0]) < float(epochs[0][0])          # the loss falls
    m = re.search(r"final held-out exact-match accuracy: ([\d.]+) \(chance ([\de.+-]+)\)", out)
    assert m is not None, out
    assert float(m.group(2)) == 1e-4 and float(m.group(1)) >= 0.5, out   # far above chance
    table = out.split("memory ledger per rank")[1].splitlines()[2:]
    assert [int(row.split()[0]) for row in table if row.strip()] == list(range(n))

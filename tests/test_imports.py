"""What importing tensorpar loads and installs, checked in fresh interpreters.

Each case runs ``python -c`` in a subprocess (a fresh ``sys.modules``), so
the result does not depend on what the test session imported before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

ALGORITHMS = ("cp", "dist_tensor", "mttkrp", "tsqr", "grid", "tt", "errors")


def _probe(body: str, **env: str) -> dict:
    """Run ``body`` in a fresh interpreter; it must print one JSON object last."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("PMI_", "PMIX_", "MPIR_", "HYDRA_", "OMPI_"))}
    full_env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), full_env.get("PYTHONPATH", "")])
    full_env.update(env)
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], capture_output=True,
                         text=True, timeout=120, env=full_env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_import_tensorpar_loads_no_optional_dependency():
    out = _probe("""
        import json, sys
        import tensorpar
        print(json.dumps(sorted(m for m in ("numba", "cupy", "mpi4py", "h5py") if m in sys.modules)))
    """)
    assert out == []


def test_import_comm_loads_only_the_communication_layer():
    pytest.importorskip("mpi4py")
    out = _probe("""
        import json, sys
        import tensorpar.distributed.comm as C
        mods = sorted(m for m in sys.modules if m.startswith("tensorpar.distributed."))
        print(json.dumps({"mods": mods, "mpi4py": "mpi4py" in sys.modules,
                          "hook": sys.excepthook is sys.__excepthook__,
                          "names": all(hasattr(C, n) for n in C.__all__)}))
    """)
    assert out["mods"] and all(m.startswith("tensorpar.distributed.comm") for m in out["mods"])
    assert not out["mpi4py"], "mpi4py is imported on first use, not by the import"
    assert out["hook"], "importing comm must not install the abort hook"
    assert out["names"]


def test_import_distributed_is_lazy_and_every_public_name_resolves():
    pytest.importorskip("mpi4py")
    out = _probe(f"""
        import json, sys
        import tensorpar.distributed as D
        loaded = sorted(m.split(".")[2] for m in sys.modules
                        if m.startswith("tensorpar.distributed."))
        before = [a for a in {ALGORITHMS!r} if a in loaded]
        missing = [n for n in D.__all__ if getattr(D, n, None) is None]
        from tensorpar.distributed import cp_als, dist_cp_als, dist_tt_svd, DistTTTensor
        print(json.dumps({{"before": before, "missing": missing, "all": D.__all__,
                          "hook": sys.excepthook is sys.__excepthook__,
                          "dist_cp_als": dist_cp_als.__module__}}))
    """)
    assert out["before"] == [], f"imported at `import tensorpar.distributed`: {out['before']}"
    assert out["missing"] == []
    assert out["hook"]
    assert out["dist_cp_als"] == "tensorpar.distributed.cp"
    for name in ("DistCPModel", "DistTensor", "DistTTTensor", "ProcessGrid", "agree",
                 "allgather_factor", "check_all", "choose_grid", "collective_guard", "comm",
                 "cp_als", "dist_cp_als", "dist_mttkrp", "dist_mttkrp_sweep", "dist_tt_add",
                 "dist_tt_dot", "dist_tt_hadamard", "dist_tt_log_norm", "dist_tt_norm",
                 "dist_tt_orthogonalize", "dist_tt_round", "dist_tt_scale", "dist_tt_sub",
                 "dist_tt_svd", "dist_ttm_matvec", "factor_blocks", "grid_cost", "owned_rows",
                 "tsqr"):
        assert name in out["all"], name


@pytest.mark.parametrize("opt_out", [False, True])
def test_abort_hook_installed_on_first_distributed_call(opt_out):
    pytest.importorskip("mpi4py")
    env = {"TENSORPAR_ABORT_HOOK": "0"} if opt_out else {}
    out = _probe("""
        import json, sys
        import numpy as np
        from tensorpar.distributed import comm as C
        from tensorpar.distributed.comm.abort import abort_hook, uninstall_abort_hook
        at_import = sys.excepthook is abort_hook
        C.allreduce(None, np.ones(2))            # a distributed call resolves its comm
        after_call = sys.excepthook is abort_hook
        uninstall_abort_hook()
        C.resolve_comm()                          # a removed hook stays removed
        print(json.dumps([at_import, after_call, sys.excepthook is abort_hook]))
    """, **env)
    assert out == [False, not opt_out, False]

"""The ``tensorpar`` command line, serially: in-process through ``main`` and as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import tensorpar as tp
from tensorpar.cli import main
from tensorpar.cli.data import InputError, parse_input

TIMEOUT = 120


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    X = tp.random_cp((12, 10, 8), 3, seed=0).to_dense()
    X += 0.01 * rng.standard_normal(X.shape)
    path = tmp_path / "x.npy"
    np.save(path, X)
    return path, X


def _env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "MPIR_", "HYDRA_", "MPICH_", "OMPI_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["NUMBA_NUM_THREADS"] = "1"
    return env


def test_cp_matches_the_library_and_saves(data, tmp_path, capsys):
    path, X = data
    out = tmp_path / "r.npz"
    status = main(["cp", str(path), "--rank", "3", "--seed", "4", "--tol", "0", "--max-iter", "7",
                   "--out", str(out), "--engine", "numpy"])
    assert status == 0
    cp, res = tp.load(out)
    want_cp, want = tp.cp_als(X, 3, seed=4, tol=0, max_iter=7, engine="numpy")
    assert res.fits == want.fits
    np.testing.assert_array_equal(cp.weights, want_cp.weights)
    err = capsys.readouterr().err.splitlines()
    iters = [line for line in err if line.startswith("iter")]
    assert len(iters) == 7 and iters[-1].split()[1] == "7"
    assert any(line.startswith("cp: done") and "7 iterations" in line for line in err)
    assert any(str(out) in line for line in err)


def test_progress_every_and_quiet(data, capsys):
    path, _ = data
    assert main(["cp", str(path), "-r", "2", "--tol", "0", "--max-iter", "9",
                 "--progress-every", "4"]) == 0
    iters = [line.split()[1] for line in capsys.readouterr().err.splitlines()
             if line.startswith("iter")]
    assert iters == ["1", "4", "8"]
    assert main(["cp", str(path), "-r", "2", "--max-iter", "3", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_checkpoint_and_resume_equal_one_run(data, tmp_path, capsys):
    path, X = data
    ck = tmp_path / "ck.npz"
    assert main(["cp", str(path), "-r", "3", "--seed", "1", "--tol", "0", "--max-iter", "4",
                 "--checkpoint", str(ck), "-q"]) == 0
    assert main(["cp", str(path), "-r", "3", "--tol", "0", "--max-iter", "9", "--resume", str(ck),
                 "--out", str(tmp_path / "r.npz"), "-q"]) == 0
    _, res = tp.load(tmp_path / "r.npz")
    _, want = tp.cp_als(X, 3, seed=1, tol=0, max_iter=9)
    np.testing.assert_allclose(res.fits, want.fits, rtol=0, atol=1e-13)
    assert res.resumed_from == 4


def _error(capsys, argv):
    status = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return status, err[-1] if err else ""


def test_bad_input_gives_one_line_and_status_1(data, tmp_path, capsys):
    path, X = data
    cases = {
        "missing.npy": "no such file",
        "nan.npy": "NaN or infinite",
        "bool.npy": "unsupported dtype bool",
        "cplx.npy": "unsupported dtype complex128",
        "vec.npy": "order >= 2",
    }
    Y = X.copy()
    Y[1, 2, 3] = np.nan
    np.save(tmp_path / "nan.npy", Y)
    np.save(tmp_path / "bool.npy", X > 0)
    np.save(tmp_path / "cplx.npy", X + 1j)
    np.save(tmp_path / "vec.npy", X.ravel())
    (tmp_path / "junk.npy").write_text("not numpy")
    cases["junk.npy"] = "not a readable .npy file"
    for name, msg in cases.items():
        status, line = _error(capsys, ["cp", str(tmp_path / name), "-r", "2", "-q"])
        assert status == 1, name
        assert line.startswith("tensorpar: error:") and msg in line, (name, line)
    # a library error (resume from a checkpoint of another problem) is one line too
    ck = tmp_path / "ck.npz"
    main(["cp", str(path), "-r", "2", "--max-iter", "2", "--checkpoint", str(ck), "-q"])
    status, line = _error(capsys, ["cp", str(path), "-r", "3", "--resume", str(ck), "-q"])
    assert status == 1 and "rank-2 model" in line


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        main(["cp", str(tmp_path / "missing.npy"), "-r", "2", "--debug"])


@pytest.mark.parametrize("argv", [["cp", "x.npy", "--rank", "0"], ["cp", "x.npy"],
                                  ["cp", "x.npy", "-r", "2", "--tol", "-1"],
                                  ["cp", "x.npy", "-r", "2", "--init", "magic"],
                                  ["tt", "x.npy", "--eps", "0.1"], []])
def test_parser_rejects_bad_options(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_hdf5_input(data, tmp_path, capsys):
    h5py = pytest.importorskip("h5py")
    _, X = data
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("/group/X", data=X.astype(np.float32))
    out = tmp_path / "r.npz"
    assert main(["cp", f"{tmp_path / 'x.h5'}:/group/X", "-r", "3", "--seed", "0", "--tol", "0",
                 "--max-iter", "5", "-o", str(out), "-q"]) == 0
    cp, res = tp.load(out)
    _, want = tp.cp_als(X.astype(np.float32), 3, seed=0, tol=0, max_iter=5)
    assert cp.dtype == np.float32
    np.testing.assert_allclose(res.fits, want.fits, rtol=0, atol=1e-6)
    status, line = _error(capsys, ["cp", f"{tmp_path / 'x.h5'}:/nope", "-r", "2", "-q"])
    assert status == 1 and "no dataset" in line
    status, line = _error(capsys, ["cp", str(tmp_path / "x.h5"), "-r", "2", "-q"])
    assert status == 1 and "FILE.h5:/path" in line


def test_parse_input():
    assert parse_input("a.h5:/x/y").dataset == "/x/y"
    assert parse_input("C:/data/a.npy").dataset is None
    with pytest.raises(InputError):
        parse_input("a.hdf5")


def test_tt_and_info(data, tmp_path, capsys):
    path, X = data
    out = tmp_path / "t.npz"
    assert main(["tt", str(path), "--eps", "0.05", "--out", str(out)]) == 0
    tt = tp.load(out)
    assert tt.ranks == tp.tt_svd(X, eps=0.05).ranks
    assert np.linalg.norm(tt.to_dense() - X) <= 0.05 * np.linalg.norm(X)
    capsys.readouterr()
    assert main(["tt", str(path), "--eps", "0", "--max-rank", "2", "--out", str(out), "-q"]) == 0
    assert max(tp.load(out).ranks) == 2
    assert main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    params = sum(c.size for c in tp.load(out).cores)
    assert "kind: TT tensor" in lines and "ranks: 1-2-2-1" in lines
    assert f"compression ratio: {X.size / params:.4g} ({X.size} entries / {params} numbers)" in lines
    assert any(line.startswith("format version: 1") for line in lines)


def test_info_of_a_cp_run_and_of_an_input(data, tmp_path, capsys):
    path, X = data
    out = tmp_path / "r.npz"
    main(["cp", str(path), "-r", "3", "--seed", "0", "-o", str(out), "-q"])
    assert main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    _, res = tp.load(out)
    assert "rank: 3" in lines and "shape: 12 x 10 x 8" in lines
    assert f"fit: {res.fit:.10f} after {res.n_iter} iterations (converged)" in lines
    assert main(["info", str(path)]) == 0
    assert "kind: dense tensor (input)" in capsys.readouterr().out
    status, line = _error(capsys, ["info", str(tmp_path / "none.npz")])
    assert status == 1 and "no such file" in line


def test_bench_lists_and_reports_missing_folder(tmp_path, capsys):
    status, line = _error(capsys, ["bench", "--dir", str(tmp_path)])
    assert status == 1 and "source checkout" in line
    (tmp_path / "_machine.py").write_text("")
    (tmp_path / "hello.py").write_text("import sys; print('bench', sys.argv[1:]); sys.exit(3)")
    assert main(["bench", "--dir", str(tmp_path)]) == 0
    assert "hello" in capsys.readouterr().out
    status, line = _error(capsys, ["bench", "--dir", str(tmp_path), "nope"])
    assert status == 1 and "choose from hello" in line
    # the script's own exit status and arguments pass through
    res = subprocess.run([sys.executable, "-m", "tensorpar", "bench", "--dir", str(tmp_path),
                          "hello", "--quick"], capture_output=True, text=True, env=_env(),
                         timeout=TIMEOUT)
    assert res.returncode == 3 and "bench ['--quick']" in res.stdout


def test_python_dash_m_subprocess(data, tmp_path):
    path, _ = data
    res = subprocess.run([sys.executable, "-m", "tensorpar", "cp", str(path), "-r", "2",
                          "--max-iter", "3", "--tol", "0", "-o", str(tmp_path / "r.npz")],
                         capture_output=True, text=True, env=_env(), timeout=TIMEOUT, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sum(line.startswith("iter") for line in res.stderr.splitlines()) == 3
    assert tp.load(tmp_path / "r.npz")[1].n_iter == 3
    res = subprocess.run([sys.executable, "-m", "tensorpar", "cp", "missing.npy", "-r", "2"],
                         capture_output=True, text=True, env=_env(), timeout=TIMEOUT, cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == "tensorpar: error: missing.npy: no such file"
    assert "Traceback" not in res.stderr
    res = subprocess.run([sys.executable, "-m", "tensorpar", "--version"], capture_output=True,
                         text=True, env=_env(), timeout=TIMEOUT)
    assert res.stdout.strip() == f"tensorpar {tp.__version__}"

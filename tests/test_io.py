"""tensorpar.save / tensorpar.load: round trips, versions, bad files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import tensorpar as tp
from tensorpar import io as tpio


@pytest.fixture(params=["npz", "h5"])
def suffix(request):
    if request.param == "h5":
        pytest.importorskip("h5py")
    return request.param


def _cp_run():
    X = tp.random_cp((6, 5, 4), 2, seed=0).to_dense()
    return tp.cp_als(X, 2, seed=1, max_iter=15, tol=0)


def test_cp_and_result_round_trip(tmp_path, suffix):
    cp, res = _cp_run()
    path = tp.save(tmp_path / f"run.{suffix}", (cp, res))
    cp2, res2 = tp.load(path)
    for a, b in zip(cp.factors, cp2.factors):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(cp.weights, cp2.weights)
    assert res2 == res  # every field, the fit history bit for bit


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_containers_round_trip(tmp_path, suffix, dtype):
    tt = tp.random_tt((3, 4, 5), 2, seed=0, dtype=np.float64)
    tt = tp.TTTensor([c.astype(dtype) for c in tt.cores])
    back = tp.load(tp.save(tmp_path / f"tt.{suffix}", tt))
    assert isinstance(back, tp.TTTensor) and back.ranks == tt.ranks
    for a, b in zip(tt.cores, back.cores):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    A = tp.TTMatrix.from_dense(np.arange(24.0).reshape(4, 6), (2, 2), (2, 3))
    A2 = tp.load(tp.save(tmp_path / f"ttm.{suffix}", A))
    assert isinstance(A2, tp.TTMatrix)
    np.testing.assert_array_equal(A2.to_dense(), A.to_dense())
    cp = tp.random_cp((3, 4), 2, seed=0, dtype=np.float32)
    cp2 = tp.load(tp.save(tmp_path / f"cp.{suffix}", cp))
    assert isinstance(cp2, tp.CPTensor) and cp2.dtype == np.float32
    np.testing.assert_array_equal(cp2.to_dense(), cp.to_dense())
    res = _cp_run()[1]
    assert tp.load(tp.save(tmp_path / f"res.{suffix}", res)) == res


def test_npz_has_no_pickled_objects_and_versions(tmp_path):
    path = tp.save(tmp_path / "cp", tp.random_cp((3, 4), 2))
    assert path.name == "cp.npz"
    with np.load(path, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
    meta = tpio.read_metadata(path)
    assert meta["format_version"] == tpio.FORMAT_VERSION
    assert meta["library_version"] == tp.__version__


def _rewrite_meta(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["__tensorpar__"]))
    meta.update(changes)
    arrays["__tensorpar__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def test_newer_format_version_is_refused(tmp_path):
    path = tp.save(tmp_path / "cp.npz", tp.random_cp((3, 4), 2))
    _rewrite_meta(path, format_version=tpio.FORMAT_VERSION + 1, library_version="9.0")
    with pytest.raises(ValueError, match=r"tensorpar 9\.0 in file format version 2.*upgrade"):
        tp.load(path)
    _rewrite_meta(path, format_version="one")
    with pytest.raises(ValueError, match="format version"):
        tp.load(path)


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match="not a file"):
        tp.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not a tensorpar file"):
        tp.load(tmp_path / "plain.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a tensorpar file"):
        tp.load(tmp_path / "junk.npz")
    # a pickled object array is refused, never unpickled
    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as z:
        with z.open("__tensorpar__.npy", "w") as f:
            np.save(f, np.array([{"kind": "cp"}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a tensorpar file"):
        tp.load(tmp_path / "pickled.npz")
    path = tp.save(tmp_path / "cp.npz", tp.random_cp((3, 4), 2))
    _rewrite_meta(path, kind="mystery")
    with pytest.raises(ValueError, match="unknown kind"):
        tp.load(path)
    with pytest.raises(TypeError, match="obj must be"):
        tp.save(tmp_path / "x.npz", np.ones(3))

"""DistTensor: constructors, gather, norm and inner product, and input errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from tensorpar import random_cp  # noqa: E402
from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.distributed.blocks import check_blocks  # noqa: E402
from tensorpar.distributed.dist_tensor import DistTensor  # noqa: E402
from tensorpar.distributed.grid import ProcessGrid, block_bounds  # noqa: E402

pytestmark = pytest.mark.mpi

SHAPES = [(5, 7, 4), (6, 3, 5, 4), (3, 4, 2, 3, 5)]


def _tensor(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _my_block(X, T):
    return X[tuple(slice(a, b) for a, b in T.bounds)]


@pytest.mark.parametrize("shape", SHAPES)
def test_scatter_gather_roundtrip(comm, shape):
    X = _tensor(shape)
    with DistTensor.scatter(X if comm.rank == 0 else None, comm=comm) as T:
        assert T.shape == shape and T.local.flags.c_contiguous
        np.testing.assert_array_equal(T.local, _my_block(X, T))
        sizes = [b - a for a, b in T.bounds]
        for n, s in enumerate(sizes):  # blocks differ by at most one index per mode
            assert s in (shape[n] // T.grid.dims[n], -(-shape[n] // T.grid.dims[n]))
        back = T.gather()
        if comm.rank == 0:
            np.testing.assert_array_equal(back, X)
        else:
            assert back is None


def test_scatter_on_given_grid_and_root(comm):
    X = _tensor((4, 5, 6))
    root = comm.size - 1
    with ProcessGrid((1, 1, comm.size), comm) as g:
        T = DistTensor.scatter(X if comm.rank == root else None, grid=g, root=root)
        assert T.grid is g
        np.testing.assert_array_equal(T.local, _my_block(X, T))
        back = T.gather(root=root)
        assert (back is None) == (comm.rank != root)
        T.free()  # does not free a grid it did not create
        assert g.cart is not None


def test_from_function_and_from_cp(comm):
    shape = (6, 5, 4)
    X = _tensor(shape)
    T = DistTensor.from_function(lambda i, j, k: X[i, j, k], shape, comm=comm)
    np.testing.assert_array_equal(T.local, _my_block(X, T))
    U = DistTensor.from_function(lambda i, j, k: i + 10 * j + 100 * k, shape,
                                 grid=T.grid, dtype=np.float32)
    assert U.dtype == np.float32
    i, j, k = np.ix_(*[np.arange(a, b) for a, b in U.bounds])
    np.testing.assert_array_equal(U.local, i + 10 * j + 100 * k)
    B = DistTensor.from_function(lambda i, j, k: X[i, j, k], shape, grid=T.grid, dtype=">f8")
    assert B.dtype == np.float64 and B.dtype.isnative   # big-endian asked: native given
    np.testing.assert_array_equal(B.local, T.local)
    cp = random_cp(shape, 3, seed=1)
    V = DistTensor.from_cp(cp, grid=T.grid)
    np.testing.assert_allclose(V.local, _my_block(cp.to_dense(), V), rtol=1e-13, atol=1e-13)
    with pytest.raises(TypeError, match="cp must be a CPTensor"):
        DistTensor.from_cp(X, comm=comm)
    T.free()


def test_from_npy_reads_only_the_block(comm, shared_dir):
    X = _tensor((7, 4, 5))
    path = os.path.join(shared_dir, "x.npy")
    if comm.rank == 0:
        np.save(path, X)
        np.save(os.path.join(shared_dir, "i.npy"), np.arange(140).reshape(7, 4, 5))
        np.save(os.path.join(shared_dir, "f.npy"), np.asfortranarray(X))
    comm.Barrier()
    with DistTensor.from_npy(path, comm=comm) as T:
        np.testing.assert_array_equal(T.local, _my_block(X, T))
        assert not isinstance(T.local, np.memmap) and T.local.base is None
        assert T.norm() == pytest.approx(np.linalg.norm(X), rel=1e-14)
    with DistTensor.from_npy(os.path.join(shared_dir, "i.npy"), comm=comm) as I:
        assert I.dtype == np.float64
    with DistTensor.from_npy(os.path.join(shared_dir, "f.npy"), comm=comm) as F:
        np.testing.assert_array_equal(F.local, _my_block(X, F))
        assert F.local.flags.c_contiguous
    with pytest.raises(ValueError, match="is not a file"):
        DistTensor.from_npy(os.path.join(shared_dir, "missing.npy"), comm=comm)


def test_from_hdf5(comm, shared_dir):
    h5py = pytest.importorskip("h5py")
    X = _tensor((5, 6, 3))
    path = os.path.join(shared_dir, "x.h5")
    if comm.rank == 0:
        with h5py.File(path, "w") as f:
            f.create_dataset("group/x", data=X)
    comm.Barrier()
    with DistTensor.from_hdf5(path, "group/x", comm=comm) as T:
        np.testing.assert_array_equal(T.local, _my_block(X, T))
    with pytest.raises(ValueError, match="dataset 'y' not found"):
        DistTensor.from_hdf5(path, "y", comm=comm)
    with pytest.raises(ValueError, match="is not a file"):
        DistTensor.from_hdf5(path + ".nope", "x", comm=comm)


@pytest.mark.parametrize("big", [">f8", ">f4"])
def test_big_endian_files_are_read_in_native_order(comm, shared_dir, big):
    X = _tensor((7, 4, 5)).astype(big)
    path = os.path.join(shared_dir, "big.npy")
    h5 = os.path.join(shared_dir, "big.h5")
    if comm.rank == 0:
        np.save(path, X)
        try:
            import h5py

            with h5py.File(h5, "w") as f:
                f.create_dataset("x", data=X)
        except ImportError:
            pass
    comm.Barrier()
    readers = [lambda: DistTensor.from_npy(path, comm=comm)]
    if os.path.exists(h5):
        readers.append(lambda: DistTensor.from_hdf5(h5, "x", comm=comm))
    for read in readers:
        with read() as T:
            assert T.dtype.isnative and T.dtype == X.dtype.newbyteorder("=")
            np.testing.assert_array_equal(T.local, _my_block(X, T))
            full = T.gather()
            if comm.rank == 0:
                assert full.dtype.isnative
                np.testing.assert_array_equal(full, X)
            assert T.norm() == pytest.approx(float(np.linalg.norm(X.astype(np.float64))),
                                             rel=1e-6)


def test_scalar_empty_and_truncated_files_raise_value_errors(comm, shared_dir):
    scalar, empty, cut = (os.path.join(shared_dir, n) for n in ("s.npy", "e.npy", "t.npy"))
    if comm.rank == 0:
        np.save(scalar, np.float64(3.0))
        open(empty, "wb").close()
        np.save(cut, np.ones((40, 30)))
        with open(cut, "r+b") as f:
            f.truncate(os.path.getsize(cut) // 2)
    comm.Barrier()
    with pytest.raises(ValueError, match=r"s\.npy' is 0-d \(a scalar\)"):
        DistTensor.from_npy(scalar, comm=comm)
    for path in (empty, cut):
        with pytest.raises(ValueError, match=rf"cannot read '.*{os.path.basename(path)}' as a \.npy"):
            DistTensor.from_npy(path, comm=comm)
    with pytest.raises(ValueError, match=r"shape is \(\) \(a 0-d scalar\)"):
        DistTensor.from_local(np.float64(1.0), (), comm=comm)


def test_scalar_and_non_hdf5_files_raise_value_errors(comm, shared_dir):
    h5py = pytest.importorskip("h5py")
    path, empty = os.path.join(shared_dir, "s.h5"), os.path.join(shared_dir, "e.h5")
    if comm.rank == 0:
        with h5py.File(path, "w") as f:
            f.create_dataset("s", data=2.0)
        open(empty, "wb").close()
    comm.Barrier()
    with pytest.raises(ValueError, match="dataset 's' in .* is 0-d"):
        DistTensor.from_hdf5(path, "s", comm=comm)
    with pytest.raises(ValueError, match=r"cannot read '.*e\.h5' as an HDF5 file"):
        DistTensor.from_hdf5(empty, "x", comm=comm)


@pytest.mark.parametrize("shape", SHAPES[:2])
def test_norm_and_inner(comm, shape):
    X, Y = _tensor(shape, 1), _tensor(shape, 2)
    T = DistTensor.scatter(X if comm.rank == 0 else None, comm=comm)
    U = DistTensor.scatter(Y if comm.rank == 0 else None, grid=T.grid)
    with C.count_traffic() as c:
        nrm = T.norm()
        ip = T.inner(U)
    assert nrm == pytest.approx(np.linalg.norm(X), rel=1e-13)
    assert ip == pytest.approx(np.vdot(X, Y), rel=1e-12)
    assert c.total_bytes == (16 if comm.size > 1 else 0)  # two allreduces of one float64
    with pytest.raises(TypeError, match="other must be a DistTensor"):
        T.inner(Y)
    U.free()
    T.free()


def test_empty_block_raises_on_all_ranks_before_any_data_moves(comm):
    with pytest.raises(ValueError, match=r"P_0 = 2 exceeds the tensor size I_0 = 1"):
        check_blocks((1, 5), (2, 1))
    if comm.size == 1:
        return
    with C.count_traffic() as c:
        with pytest.raises(ValueError, match=rf"P_0 = {comm.size} exceeds the tensor size I_0 = 1"):
            DistTensor.from_function(lambda i, j: i + j, (1, 5), grid=(comm.size, 1), comm=comm)
        with ProcessGrid((comm.size, 1), comm) as g:
            with pytest.raises(ValueError, match="exceeds the tensor size"):
                DistTensor.from_local(np.ones((1, 5)), (comm.size - 1, 5), grid=g)
    # only the argument agreement (metadata) ran; no array moved, no grid was created
    assert c.total_calls == 0 and set(c.calls) == {"meta"}


def test_input_errors_raise_everywhere(comm):
    bad = comm.size - 1
    with pytest.raises((TypeError, ValueError)):
        DistTensor.scatter(np.ones((2, 2), dtype=bool) if comm.rank == 0 else None, comm=comm)
    with pytest.raises(ValueError):  # one rank's block has the wrong shape
        with ProcessGrid((comm.size, 1), comm) as g:
            a, b = block_bounds(2 * comm.size, comm.size, comm.rank)
            rows = b - a + (1 if comm.rank == bad else 0)
            DistTensor.from_local(np.ones((rows, 3)), (2 * comm.size, 3), grid=g)
    def fn(i, j):
        if comm.rank == bad:
            raise KeyError("no data here")
        return i + j

    with pytest.raises((KeyError, ValueError)) as info:  # fn fails on one rank only
        DistTensor.from_function(fn, (2 * comm.size, 3), comm=comm)
    assert "no data here" in str(info.value)

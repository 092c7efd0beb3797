"""MPI layer of tensorpar (needs the ``mpi`` extra: mpi4py and an MPI library).

Every distributed API takes ``comm`` explicitly (default ``MPI.COMM_WORLD``,
resolved in :func:`tensorpar.distributed.comm.resolve_comm`).
"""

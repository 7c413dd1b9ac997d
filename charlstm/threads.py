"""One BLAS thread for numpy inference, scoped rather than set for the whole process.

Inference multiplies small matrices, where a second OpenBLAS thread costs more in
synchronisation than it gains. :func:`single_blas_thread` limits BLAS (threadpoolctl)
while numpy inference runs and restores the previous setting afterwards, so
importing charlstm changes nothing in the importing program. An explicit
``OPENBLAS_NUM_THREADS`` in the environment wins; the ``charlstm`` program sets it
to 1 for its own process before numpy loads (:func:`charlstm.cli.main`), which also
spares OpenBLAS' thread-pool start-up (``bench_generate.py --threads`` overrides it).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the body with BLAS limited to one thread (numpy is imported first)."""
    if os.environ.get("OPENBLAS_NUM_THREADS"):
        yield
        return
    import numpy  # noqa: F401  (loads OpenBLAS, which threadpoolctl then finds)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield

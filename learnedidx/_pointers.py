"""Arrays from raw addresses inside Numba kernels, for the scalar fast path.

A compiled function called from Python unboxes each array argument (a reference-counted
wrapper is allocated and freed per call); an integer address costs far less. Scalar kernels
therefore take the addresses of arrays that the index object keeps alive, and rebuild views
with :func:`numba.carray` (about 75 ns less per scalar call with three arrays; docs/design.md).
"""

from __future__ import annotations

from numba import types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic


@intrinsic
def ptr_like(typingctx, address, like):
    """Integer ``address`` as a pointer to elements of ``like``'s type (a scalar or an array)."""
    if not isinstance(address, types.Integer):
        return None
    element = like.dtype if isinstance(like, types.Array) else like
    if not isinstance(element, (types.Integer, types.Float)):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return types.CPointer(element)(address, like), codegen


def address(array) -> int:
    """The address of a contiguous array's first element."""
    return array.__array_interface__["data"][0]


@intrinsic
def mutable_view(typingctx, a):
    """The array ``a`` typed as writable whatever its flag, never written through.

    Read-only and writable arrays are different Numba types: a helper called with both compiles
    twice. Kernels pass their arrays through this so that the helpers they share with the
    scalar kernel (whose :func:`numba.carray` views are writable) compile once."""
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, signature, args):
        return impl_ret_borrowed(context, builder, signature.return_type, args[0])

    return a.copy(readonly=False)(a), codegen

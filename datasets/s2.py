"""S2 cell ids of latitude/longitude points, vectorised with numpy.

This is the project's own implementation of the published S2 cell-id scheme
(the one behind SOSD's ``osm_cellids``):

1. (lat, lng) in degrees -> unit vector (x, y, z) on the sphere;
2. the cube face the vector points at (0..5: +x, +y, +z, -x, -y, -z) and the
   gnomonic coordinates (u, v) in [-1, 1] on that face;
3. the quadratic transform (u, v) -> (s, t) in [0, 1], which makes cells of
   one level roughly equal in area;
4. (s, t) -> integer cell coordinates (i, j) in [0, 2**level);
5. (i, j) -> position along the face's Hilbert curve, two bits per level,
   starting in the orientation ``face & 1`` (odd faces start with axes swapped);
6. cell id = ``face << 61 | position << (61 - 2*level) | 1 << (60 - 2*level)``:
   3 face bits, 2 bits per level, then a single set "level marker" bit.

Leaf cells (level 30) therefore have the lowest bit set and sort along a
space-filling curve, so nearby points usually get nearby ids.
Every step is O(n) numpy work; step 5 loops over the levels (30 passes).
"""

from __future__ import annotations

import numpy as np

MAX_LEVEL = 30
_FACE_SHIFT = 2 * MAX_LEVEL + 1  # 61: the face occupies the top 3 bits

# Hilbert-curve tables. Orientation bit 1 = axes swapped, bit 2 = bits inverted.
# _IJ_TO_POS[orientation, (i_bit << 1) | j_bit] -> position 0..3 of that
# quadrant along the curve; _POS_TO_ORIENTATION[position] is XOR-ed into the
# orientation used for the next level down.
_SWAP, _INVERT = 1, 2
_IJ_TO_POS = np.array(
    [
        [0, 1, 3, 2],  # canonical: (0,0) (0,1) (1,1) (1,0)
        [0, 3, 1, 2],  # swapped:   (0,0) (1,0) (1,1) (0,1)
        [2, 3, 1, 0],  # inverted:  (1,1) (1,0) (0,0) (0,1)
        [2, 1, 3, 0],  # both:      (1,1) (0,1) (0,0) (1,0)
    ],
    dtype=np.uint8,
).ravel()
_POS_TO_ORIENTATION = np.array([_SWAP, 0, 0, _SWAP | _INVERT], dtype=np.uint8)


def latlng_to_xyz(lat_deg, lng_deg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors for latitudes/longitudes in degrees (O(n)).

    Raises ValueError if a latitude is outside [-90, 90] or a value is not finite.
    """
    lat = np.asarray(lat_deg, dtype=np.float64)
    lng = np.asarray(lng_deg, dtype=np.float64)
    if not (np.isfinite(lat).all() and np.isfinite(lng).all()):
        raise ValueError("lat/lng: all coordinates must be finite numbers (drop NaN/inf rows first)")
    if lat.size and (np.abs(lat) > 90.0).any():
        raise ValueError("lat: latitudes must lie in [-90, 90] degrees (were lat and lng swapped?)")
    phi = lat * (np.pi / 180.0)
    theta = lng * (np.pi / 180.0)
    cos_phi = np.cos(phi)
    return np.cos(theta) * cos_phi, np.sin(theta) * cos_phi, np.sin(phi)


def xyz_to_face_uv(x, y, z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cube face (uint8, 0..5) and face coordinates (u, v) in [-1, 1] of vectors (O(n))."""
    x, y, z = (np.asarray(c, dtype=np.float64) for c in (x, y, z))
    ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
    # Largest |component|; ties go to the later axis, as in the reference scheme.
    axis = np.where(ax > ay, np.where(ax > az, 0, 2), np.where(ay > az, 1, 2))
    component = np.choose(axis, (x, y, z))
    face = (axis + 3 * (component < 0)).astype(np.uint8)
    u = np.empty_like(x)
    v = np.empty_like(x)
    # (u numerator, v numerator, denominator) per face.
    per_face = (
        (y, z, x),
        (-x, z, y),
        (-x, -y, z),
        (z, y, x),
        (z, -x, y),
        (-y, -x, z),
    )
    for f, (un, vn, den) in enumerate(per_face):
        m = face == f
        u[m] = un[m] / den[m]
        v[m] = vn[m] / den[m]
    return face, u, v


def uv_to_st(u) -> np.ndarray:
    """Quadratic transform from face coordinate u in [-1, 1] to s in [0, 1] (O(n))."""
    u = np.asarray(u, dtype=np.float64)
    return np.where(u >= 0, 0.5 * np.sqrt(1.0 + 3.0 * np.abs(u)), 1.0 - 0.5 * np.sqrt(1.0 + 3.0 * np.abs(u)))


def st_to_ij(s, level: int = MAX_LEVEL) -> np.ndarray:
    """Integer cell coordinate floor(s * 2**level), clamped to [0, 2**level - 1] (O(n))."""
    limit = 1 << level
    return np.clip(np.floor(np.asarray(s, dtype=np.float64) * limit), 0, limit - 1).astype(np.uint64)


def face_ij_to_cell_id(face, i, j, level: int = MAX_LEVEL) -> np.ndarray:
    """Cell ids (uint64) of cells (face, i, j) at ``level`` (O(n * level)).

    ``i`` and ``j`` are coordinates in [0, 2**level). Raises ValueError for a
    level outside 0..30 or out-of-range coordinates or faces.
    """
    if not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"level: must be in 0..{MAX_LEVEL}, got {level}")
    face = np.asarray(face, dtype=np.uint64)
    i = np.asarray(i, dtype=np.uint64)
    j = np.asarray(j, dtype=np.uint64)
    if face.size and face.max() > 5:
        raise ValueError("face: cube faces are numbered 0..5")
    if i.size and max(int(i.max()), int(j.max())) >= 1 << level:
        raise ValueError(f"i/j: coordinates must be < 2**{level} at level {level}")
    orientation = (face & np.uint64(_SWAP)).astype(np.uint8)
    pos = np.zeros(np.broadcast(face, i, j).shape, dtype=np.uint64)
    one = np.uint64(1)
    for bit in range(level - 1, -1, -1):
        b = np.uint64(bit)
        quadrant = (((i >> b) & one) << one) | ((j >> b) & one)
        p = _IJ_TO_POS[(orientation.astype(np.intp) << 2) | quadrant.astype(np.intp)]
        pos = (pos << np.uint64(2)) | p.astype(np.uint64)
        orientation ^= _POS_TO_ORIENTATION[p]
    tail = _FACE_SHIFT - 2 * level
    return (face << np.uint64(_FACE_SHIFT)) | (pos << np.uint64(tail)) | (one << np.uint64(tail - 1))


def latlng_to_cell_id(lat_deg, lng_deg, level: int = MAX_LEVEL) -> np.ndarray:
    """S2 cell ids (uint64) containing the given points, leaf level 30 by default (O(n * level)).

    Raises ValueError for invalid coordinates (see latlng_to_xyz) or level.
    """
    face, u, v = xyz_to_face_uv(*latlng_to_xyz(lat_deg, lng_deg))
    return face_ij_to_cell_id(face, st_to_ij(uv_to_st(u), level), st_to_ij(uv_to_st(v), level), level)

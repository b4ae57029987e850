"""The search modes and the not-found code, defined once for kernels, coercion and classes.

A kernel takes ``mode`` as a plain int (Numba folds these module constants into the code).
"""

LEFT = 0  #: first position whose key is >= q (``np.searchsorted(side="left")``): lower_bound
RIGHT = 1  #: first position whose key is > q (``np.searchsorted(side="right")``): upper_bound
FIND = 2  #: position of the first key equal to q, or NOT_FOUND
NOT_FOUND = -1  #: what FIND gives for an absent key

"""The CuPy backend: raw CUDA kernels behind ``linrec.scan`` for CuPy arrays.

``scan.cu`` and its headers hold the kernels (templated per dtype, standalone so nvcc and
NVRTC compile the same text); ``_kernels`` names them, lists their parameters (the
table launches are built from, by name) and loads them with ``cupy.RawModule``;
``_plan`` picks the blocking; ``_strides`` gives the element strides of the shared
``(R, T, C)`` views (``linrec._layout``); ``backend`` launches. The tests check the
launches without a GPU against a NumPy model of the kernels (``tests/cuda_model.py``).
Nothing here is imported by ``import linrec``, and CuPy is imported only when a CuPy
array reaches the backend.
"""

"""The CuPy backend: raw CUDA kernels behind ``linrec.scan`` for CuPy arrays.

``scan.cu`` and its headers hold the kernels (templated per dtype, standalone so nvcc and
NVRTC compile the same text); ``_kernels`` names and loads them with ``cupy.RawModule``;
``_plan`` picks the blocking; ``_layout`` describes operands as strided ``(R, T, C)``
arrays; ``backend`` launches; ``_model`` is a NumPy model of the kernels' blocking, used
by the tests where no GPU is available. Nothing here is imported by ``import linrec`` and
CuPy is imported only when a CuPy array reaches the backend.
"""

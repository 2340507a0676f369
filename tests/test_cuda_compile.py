"""Every CUDA kernel instantiation compiles with nvcc for sm_80 and sm_90, without spills.

The compiled text is exactly what the CuPy loader hands to NVRTC (``source_text()``, the
kernels with their headers pasted in, no include path), instantiated at exactly its
``name_expressions``, so a template or syntax error fails here, without a GPU. The
sources must stay standalone (NVRTC inside CuPy has no system headers): they may include
only each other.
"""

import pathlib
import re
import shutil
import subprocess

import pytest

from linrec.cuda import _kernels

ARCHS = ("80", "90")


def _nvcc():
    found = shutil.which("nvcc")
    if found is None and pathlib.Path("/usr/local/cuda/bin/nvcc").exists():
        found = "/usr/local/cuda/bin/nvcc"
    return found


def _sources():
    return sorted(_kernels.SOURCE_DIR.glob("*.cu")) + sorted(
        _kernels.SOURCE_DIR.glob("*.cuh"))


def test_sources_include_only_each_other():
    names = {p.name for p in _sources()}
    for path in _sources():
        for line in path.read_text().splitlines():
            m = re.match(r'\s*#\s*include\s*[<"]([^>"]+)[>"]', line)
            if m:
                assert m.group(1) in names, f"{path.name} includes {m.group(1)}"


def test_source_text_pastes_each_header_once():
    text = _kernels.source_text()
    assert "#include" not in text
    assert text.count("#define LINREC_SCALAR_CUH") == 1
    assert text.count("#define LINREC_TILE_CUH") == 1


def test_every_dtype_pair_has_every_kernel():
    for ta, tb in _kernels.PAIRS:
        names = _kernels.expressions(ta, tb)
        assert len(set(names)) == len(_kernels.KERNELS)


@pytest.mark.skipif(_nvcc() is None, reason="nvcc not found (install the CUDA toolkit)")
def test_all_instantiations_compile_with_nvcc(tmp_path):
    lines = [_kernels.source_text(), "void* linrec_instantiations[] = {"]
    for ta, tb in _kernels.PAIRS:
        lines += [f"    (void*)&{name}," for name in _kernels.expressions(ta, tb)]
    lines.append("};")
    unit = tmp_path / "instantiate.cu"
    unit.write_text("\n".join(lines) + "\n")
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in ARCHS]
    result = subprocess.run(
        [_nvcc(), "-std=c++11", "-c", str(unit), "-o",
         str(tmp_path / "instantiate.o"), *gencode, "-Xptxas", "-v",
         "-Werror", "all-warnings"],
        capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    spills = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    assert spills, log
    assert all(s == "0" and ld == "0" for s, ld in spills), log

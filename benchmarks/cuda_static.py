"""Static figures of the CUDA kernels: registers, spills, instructions per time step.

Compiles the exact NVRTC text (``linrec.cuda._kernels.source_text()``) with nvcc for one
architecture (default sm_90), one cubin per dtype pair, and prints a Markdown table:

* registers, spill stores/loads and static shared memory, from ``ptxas -v``;
* the kernel's main loop, found in the SASS (``cuobjdump -sass``) as the longest backward
  branch, its static instruction count and that count per time step handled by one
  thread, split into global loads/stores, shared-memory and shuffle traffic,
  floating-point and the rest (integer and address arithmetic, predicates, branches).
  An iteration handles ``items`` steps per thread in the tiled kernels (one tile per
  block in the ``*_lookback`` kernels, whose "loop" is the whole kernel) and the compiler's
  unroll factor in the others (counted from the stores, or loads, per step). "copies" is
  how many times the loop holds the code for its global stores (2: separate forward and
  reverse paths, of which one runs, so "per step" over-counts what executes; n/a for
  the look-back kernel, whose look-back has loads and stores of its own).

Without ``cuobjdump`` (pip install 'linrec[sass]', or a CUDA toolkit that ships it) the
loop is counted in the PTX instead (``nvcc -ptx``; virtual instructions, a rougher guide).
Needs nvcc, no GPU. Usage::

    python benchmarks/cuda_static.py [--arch 90] [--out table.md]
"""

import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

from linrec.cuda import _kernels, _plan

# How a loop iteration's time steps are counted: global stores (or loads) per step. The
# reduce_segments and carry_segments kernels are those of the three-phase scan before the
# look-back kernels (commit c94d3f1 and earlier), kept so the "before" table reproduces.
STORES_PER_STEP = {"forward_tiles": 1, "forward_lookback": 1, "backward_tiles": 2,
                   "backward_lookback": 2, "forward_channels": 1, "backward_channels": 2,
                   "carry_segments": 1}
LOADS_PER_STEP = {"reduce_segments": 2, "reduce_segments_adjoint": 2, "sum_segments": 1}


def tool(name):
    """Path of a CUDA tool: PATH, /usr/local/cuda/bin, or NVIDIA's pip wheels."""
    found = shutil.which(name)
    if found:
        return found
    candidates = [pathlib.Path("/usr/local/cuda/bin") / name]
    try:
        import nvidia

        for root in nvidia.__path__:
            candidates += sorted(pathlib.Path(root).glob(f"*/bin/{name}"))
    except ImportError:
        pass
    return next((str(p) for p in candidates if p.exists()), None)


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True,
                         text=True, check=True).stdout.split("\n")
    return dict(zip(names, out, strict=False))


def compile_pair(ta, tb, arch, folder):
    """``(ptxas resources by mangled name, SASS or PTX text, kind)`` for one dtype pair."""
    unit = folder / f"{ta.name}_{tb.name}.cu"
    lines = [_kernels.source_text(), "void* linrec_instantiations[] = {"]
    lines += [f"    (void*)&{name}," for name in _kernels.expressions(ta, tb)]
    unit.write_text("\n".join(lines + ["};", ""]))
    cubin = unit.with_suffix(".cubin")
    log = subprocess.run(
        ["nvcc", "-std=c++11", "-cubin", f"-arch=sm_{arch}", "-Xptxas", "-v", "-o",
         str(cubin), str(unit)], capture_output=True, text=True, check=True).stderr
    resources = {}
    current = None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            current = resources.setdefault(m.group(1), {})
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and current is not None:
            current["spill"] = f"{m.group(1)}/{m.group(2)}"
        m = re.search(r"Used (\d+) registers", line)
        if m and current is not None:
            current["regs"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            current["smem"] = int(s.group(1)) if s else 0
    cuobjdump = tool("cuobjdump")
    if cuobjdump:
        text = subprocess.run([cuobjdump, "-sass", str(cubin)], capture_output=True,
                              text=True, check=True).stdout
        return resources, text, "SASS"
    ptx = unit.with_suffix(".ptx")
    subprocess.run(["nvcc", "-std=c++11", "-ptx", f"-arch=sm_{arch}", "-o", str(ptx),
                    str(unit)], check=True)
    return resources, ptx.read_text(), "PTX"


def sass_functions(text):
    """``{mangled name: [(address, instruction)]}`` from ``cuobjdump -sass``."""
    out = {}
    body = None
    for line in text.splitlines():
        m = re.match(r"\s*Function : (\w+)", line)
        if m:
            body = out.setdefault(m.group(1), [])
            continue
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.+?)\s*;", line)
        if m and body is not None:
            body.append((int(m.group(1), 16), m.group(2)))
    return out


def sass_loop(body):
    """The instructions of the longest backward branch's loop."""
    best = []
    for i, (address, ins) in enumerate(body):
        m = re.search(r"\bBRA\b.*?0x([0-9a-f]+)", ins)
        if m and int(m.group(1), 16) < address:
            start = next(k for k, (a, _) in enumerate(body) if a >= int(m.group(1), 16))
            if i + 1 - start > len(best):
                best = [x for _, x in body[start:i + 1]]
    return best


def ptx_functions(text):
    """``{mangled name: [instruction]}`` with labels kept as ``label:`` entries."""
    out = {}
    for m in re.finditer(r"\.entry (\w+)\(.*?\)\s*(?:\.\w+[^{]*)?\{(.*?)\n\}", text, re.S):
        body = []
        for line in m.group(2).splitlines():
            line = line.strip()
            if re.match(r"\$\w+:", line):
                body.append(line)
            elif line and not line.startswith(("//", ".", "{", "}")):
                body.append(line.rstrip(";"))
        out[m.group(1)] = body
    return out


def ptx_loop(body):
    best = []
    for i, ins in enumerate(body):
        m = re.search(r"\bbra(?:\.uni)?\s+(\$\w+)", ins)
        if m and f"{m.group(1)}:" in body[:i]:
            start = body.index(f"{m.group(1)}:")
            loop = [x for x in body[start:i + 1] if not x.endswith(":")]
            if len(loop) > len(best):
                best = loop
    return best


CLASSES = [
    ("global ld", r"^(?:@!?U?P\w+\s+)?(LDG|ld\.global)"),
    ("global st", r"^(?:@!?U?P\w+\s+)?(STG|st\.global)"),
    ("shared/shfl/bar", r"^(?:@!?U?P\w+\s+)?(LDS|STS|SHFL|BAR|WARPSYNC|NOP|ld\.shared|"
                        r"st\.shared|shfl|bar)"),
    ("float", r"^(?:@!?U?P\w+\s+)?(FFMA|FMUL|FADD|DFMA|DMUL|DADD|fma|mul\.rn|add\.f|"
              r"mul\.f|sub\.f|neg\.f|add\.rn|sub\.rn|fma\.rn)"),
]


def classify(loop):
    counts = dict.fromkeys([c for c, _ in CLASSES] + ["int/addr/other"], 0)
    for ins in loop:
        name = next((c for c, pattern in CLASSES if re.search(pattern, ins)),
                    "int/addr/other")
        counts[name] += 1
    return counts


def rows(arch):
    with tempfile.TemporaryDirectory() as tmp:
        for ta, tb in _kernels.PAIRS:
            resources, text, kind = compile_pair(ta, tb, arch, pathlib.Path(tmp))
            bodies = sass_functions(text) if kind == "SASS" else ptx_functions(text)
            demangled = demangle(sorted(resources))
            kernel_of = {_kernels.expression(k, ta, tb).replace(" ", ""): k
                         for k in _kernels.KERNELS}
            for mangled, res in resources.items():
                readable = re.sub(r"^void |\(.*$", "", demangled[mangled]).replace(" ", "")
                readable = readable.replace("(float)", "").replace("cplx<float>",
                                                                   "complex64")
                readable = readable.replace("cplx<double>", "complex128")
                kernel = kernel_of.get(readable)
                if kernel is None:
                    continue
                body = bodies.get(mangled, [])
                loop = sass_loop(body) if kind == "SASS" else ptx_loop(body)
                counts = classify(loop)
                if kernel.endswith("_lookback"):
                    loop = [x[1] if isinstance(x, tuple) else x for x in body]
                    loop = [x for x in loop if not x.startswith("NOP") and
                            not x.endswith(":")]
                    counts = classify(loop)
                if kernel in LOADS_PER_STEP:
                    stored = counts["global ld"] / LOADS_PER_STEP[kernel]
                else:
                    stored = counts["global st"] / STORES_PER_STEP[kernel]
                steps, copies = stored, "1"
                if kernel.endswith("_lookback"):
                    steps, copies = _plan.items_for(tb.itemsize), "n/a"
                elif "_tiles" in kernel or kernel.startswith("reduce_segments"):
                    steps = _plan.items_for(tb.itemsize)
                    copies = f"{stored / steps:g}"
                yield dict(kernel=kernel, pair=f"{ta.name}, {tb.name}", kind=kind,
                           regs=res.get("regs"), spill=res.get("spill"),
                           smem=res.get("smem"), total=len(body), loop=len(loop),
                           steps=steps, copies=copies, counts=counts)


def table(arch):
    head = ("| kernel | a, b | regs | spill st/ld B | smem B | instrs | loop | "
            "steps/iter | copies | per step | ld | st | smem+shfl | float | int+other |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    kinds = set()
    for r in sorted(rows(arch), key=lambda r: (r["kernel"], r["pair"])):
        kinds.add(r["kind"])
        s = r["steps"] or 1
        c = r["counts"]
        per = [f"{c[k] / s:.1f}" for k in
               ("global ld", "global st", "shared/shfl/bar", "float", "int/addr/other")]
        lines.append(
            f"| {r['kernel']} | {r['pair']} | {r['regs']} | {r['spill']} | {r['smem']} | "
            f"{r['total']} | {r['loop']} | {r['steps']:g} | {r['copies']} | "
            f"{r['loop'] / s:.1f} | "
            + " | ".join(per) + " |")
    note = (f"\nsm_{arch}; instructions counted in {' and '.join(sorted(kinds))}; "
            "'loop' is the main loop's static length, 'per step' that divided by the "
            "time steps one thread handles per iteration.\n")
    return "\n".join(lines) + "\n" + note


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="90")
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args(argv)
    if shutil.which("nvcc") is None:
        sys.exit("nvcc not found: install the CUDA toolkit")
    text = table(args.arch)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()

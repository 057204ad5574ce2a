"""The machine a benchmark runs on, and the peak arithmetic rate of its CPU."""

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# Two FMA pipes per core is what current server cores have (Zen 2-4, Skylake-SP Gold and up);
# some AVX-512 parts (Xeon Silver/Bronze) have one: the estimate is then twice too high.
FMA_PIPES = 2
# AMX multiplies a 16x32 bf16 tile by a 32x16 one: 1024 bf16 FLOP per cycle and core.
AMX_BF16_FLOP_PER_CYCLE = 1024


@dataclass(frozen=True)
class Cpu:
    model: str
    cores: int  # physical cores this process may run on
    mhz: float
    clock_source: str
    flags: frozenset[str]

    @property
    def fp32_lanes(self) -> int:
        if "avx512f" in self.flags:
            return 16
        return 8 if {"avx2", "fma"} <= self.flags else 4

    def peak_gflops(self, precision: str) -> float:
        """Peak GFLOP/s (a fused multiply-add counted as 2 FLOP) over all usable cores."""
        per_cycle = FMA_PIPES * self.fp32_lanes * 2
        if precision == "bf16":
            if "amx_bf16" in self.flags:
                per_cycle = AMX_BF16_FLOP_PER_CYCLE
            elif "avx512_bf16" in self.flags:
                per_cycle *= 2  # vdpbf16ps: two bf16 products per fp32 lane
        return self.cores * self.mhz / 1000 * per_cycle

    def native_bf16(self) -> bool:
        return bool({"amx_bf16", "avx512_bf16"} & self.flags)

    def explain(self) -> list[str]:
        vector = {16: "AVX-512", 8: "AVX2+FMA", 4: "SSE"}[self.fp32_lanes]
        lines = [
            f"CPU: {self.model}, {self.cores} physical cores usable, {self.mhz:.0f} MHz "
            f"({self.clock_source})",
            f"fp32 peak = {self.cores} cores x {self.mhz / 1000:.2f} GHz x {FMA_PIPES} FMA pipes"
            f" x {self.fp32_lanes} lanes ({vector}) x 2 FLOP"
            f" = {self.peak_gflops('fp32'):.0f} GFLOP/s",
        ]
        if "amx_bf16" in self.flags:
            how = f"AMX: {AMX_BF16_FLOP_PER_CYCLE} FLOP/cycle/core"
        elif "avx512_bf16" in self.flags:
            how = "avx512_bf16: twice the fp32 rate"
        else:
            how = "no avx512_bf16/amx_bf16: bf16 is converted to fp32, so at best the fp32 peak"
        lines.append(f"bf16 peak = {self.peak_gflops('bf16'):.0f} GFLOP/s ({how})")
        lines.append("a multiply-add (MAC) counts as 2 FLOP; the clock is nominal, boost is higher")
        return lines

    def facts(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "cores": self.cores,
            "mhz": self.mhz,
            "clock_source": self.clock_source,
            "simd": sorted(f for f in self.flags if f.startswith(("avx", "amx", "fma"))),
            "peak_gflops": {p: round(self.peak_gflops(p), 1) for p in ("fp32", "bf16")},
        }


def read_cpu() -> Cpu:
    """From /proc/cpuinfo: model, flags, physical cores of this process's CPUs, and clock."""
    usable = os.sched_getaffinity(0)
    blocks = Path("/proc/cpuinfo").read_text().strip().split("\n\n")
    cores: set[tuple[str, str]] = set()
    info: dict[str, str] = {}
    for block in blocks:
        fields = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in block.splitlines())
        )
        if int(fields.get("processor", -1)) in usable:
            info = info or fields
            cores.add((fields.get("physical id", "0"), fields.get("core id", fields["processor"])))
    max_khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if max_khz.exists():
        mhz, source = int(max_khz.read_text()) / 1000, "cpufreq maximum"
    else:
        mhz, source = float(info.get("cpu MHz", 0)), "/proc/cpuinfo 'cpu MHz'"
    return Cpu(
        model=info.get("model name", platform.processor()),
        cores=len(cores) or len(usable),
        mhz=mhz,
        clock_source=source,
        flags=frozenset(info.get("flags", "").split()),
    )


def gemm_gflops(threads: int, n: int = 2048) -> float:
    """GFLOP/s of a large fp32 matrix product: the practical ceiling, beside the estimate."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_average": os.getloadavg(),
    }

"""The program at 100, 1,000, 5,000 and 10,000 tenants under Pulumi mocks, against its floor.

    python benchmarks/program_scale.py [--sizes 100,1000,5000,10000] [--repeat N]

For each size it writes a tier file (three tiers, a tenth of the tenants silo, one in
fifty suspended) and evaluates, each in a fresh interpreter so peaks do not mix:

- ``program``: ``infra.program.main`` exactly as ``pulumi up`` runs it (config, tier file
  loading and validation, bundle cache check, components);
- ``floor``: :func:`benchmarks.floor.floor`, the same resources and outputs declared flat.

Both run against the same plain mock monitor and mocks as the tests (tests/infra/harness.py),
without the harness's recording, so the measurement adds nothing to either. A child reports
the wall time of the evaluation alone (imports and the bundle build happen before), the
process's peak RSS, the RSS growth during the evaluation, and the custom resources registered
per pooled and per silo tenant (those whose logical name ends in the tenant id).
The parent prints a table per size and the program/floor ratios: best-of-N time, median memory.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final, Literal

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pulumi.runtime.mocks import MockMonitor

from benchmarks.arguments import positive
from benchmarks.floor import default_bundle, floor
from infra.config import CONFIG_NAMESPACE
from infra.program import main
from tests.infra.harness import DEPLOY_CONFIG, PROJECT, ProgramMocks, run_under_mocks

Variant = Literal["program", "floor"]
VARIANTS: Final[tuple[Variant, ...]] = ("program", "floor")
DEFAULT_SIZES: Final = (100, 1_000, 5_000, 10_000)
STACK: Final = "bench"
SILO_EVERY: Final = 10
SUSPENDED_EVERY: Final = 50

TIERS_YAML: Final = """\
tiers:
  basic:
    isolation: pooled
    throttle: {rate: 10, burst: 20}
    quota: {limit: 10000, period: MONTH}
  gold:
    isolation: pooled
    throttle: {rate: 50.5, burst: 100}
    quota: {limit: 70000, period: WEEK, offset: 2}
  premium:
    isolation: silo
    throttle: {rate: 200, burst: 400}
    quota: {limit: 5000000, period: MONTH}
tenants:
"""

TARGET_WALL_RATIOS: Final = {5_000: 0.8, 10_000: 0.7}
"""program/floor wall time at these sizes."""
TARGET_PEAK_RSS_RATIO: Final = 1.1
TARGET_RESOURCES_PER_POOLED_TENANT: Final = 3
TARGET_SIZE: Final = max(TARGET_WALL_RATIOS)


def tenant_tiers(count: int) -> dict[str, str]:
    """Tenant id -> tier: every tenth silo, the rest alternating between the pooled tiers."""
    return {
        f"t{index:05d}": "premium" if index % SILO_EVERY == 0 else ("basic" if index % 2 else "gold")
        for index in range(count)
    }


def write_tier_file(path: Path, count: int) -> Path:
    lines = [TIERS_YAML]
    for index, (tenant_id, tier) in enumerate(tenant_tiers(count).items()):
        lines.append(f"  {tenant_id}:\n    tier: {tier}\n    name: Tenant {index}\n")
        if index % SUSPENDED_EVERY == SUSPENDED_EVERY - 1:
            lines.append("    suspended: true\n")
    path.write_text("".join(lines))
    return path


@dataclass(frozen=True)
class Measurement:
    variant: str
    tenants: int
    seconds: float
    """Wall time of the evaluation."""
    cpu_seconds: float
    """CPU time of the evaluation (all threads): less disturbed by other work on a shared machine."""
    peak_rss_mb: float
    """Peak resident memory of the whole child process (interpreter, imports, evaluation)."""
    growth_mb: float
    """Peak RSS minus the RSS just before the evaluation: what the evaluation itself adds."""
    resources: int
    """Custom resources registered."""
    per_pooled_tenant: float
    per_silo_tenant: float


def measure(variant: Variant, tenants: int, directory: Path) -> Measurement:
    """Evaluate ``variant`` once at ``tenants`` in this process (call it in a fresh one)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    tiers_file = write_tier_file(directory / f"{STACK}.yaml", tenants)
    # Built (or found in the cache) here, so neither variant times pip.
    bundle = default_bundle()
    program: Callable[[], None] = (
        main if variant == "program" else functools.partial(floor, tiers_file, bundle, f"{PROJECT}-{STACK}")
    )
    monitor = MockMonitor(ProgramMocks())
    config = {**DEPLOY_CONFIG, f"{CONFIG_NAMESPACE}:tiersFile": str(tiers_file)}
    _warm_up()
    gc.collect()
    rss_before = _current_rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    run_under_mocks(program, monitor, config, STACK)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_pooled, per_silo = _resources_per_tenant(monitor.resources, tenant_tiers(tenants))
    custom = sum(1 for urn in monitor.resources if _urn_type(urn).startswith("aws:"))
    return Measurement(
        variant=variant,
        tenants=tenants,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        peak_rss_mb=peak,
        growth_mb=peak - rss_before,
        resources=custom,
        per_pooled_tenant=per_pooled,
        per_silo_tenant=per_silo,
    )


def _warm_up() -> None:
    """Import the pulumi_aws modules both variants use (pulumi_aws loads them lazily, at seconds each)."""
    import pulumi_aws as aws

    for module in (aws.apigateway, aws.cloudwatch, aws.cognito, aws.dynamodb, aws.iam, aws.lambda_):
        assert module.__name__


def _urn_type(urn: str) -> str:
    return urn.split("::")[2].rpartition("$")[2]


def _resources_per_tenant(registered: Iterable[str], tiers: dict[str, str]) -> tuple[float, float]:
    per_tenant = Counter(
        urn.rpartition("::")[2].rpartition("-")[2] for urn in registered if _urn_type(urn).startswith("aws:")
    )
    pooled = [per_tenant[tenant] for tenant, tier in tiers.items() if tier != "premium"]
    silo = [per_tenant[tenant] for tenant, tier in tiers.items() if tier == "premium"]
    return statistics.fmean(pooled or [0]), statistics.fmean(silo or [0])


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_child(variant: Variant, tenants: int) -> Measurement:
    """One measurement in a fresh interpreter."""
    completed = subprocess.run(
        [sys.executable, __file__, "--run", variant, "--tenants", str(tenants)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{variant} at {tenants} tenants failed:\n{completed.stderr[-4000:]}")
    return Measurement(**json.loads(completed.stdout.strip().splitlines()[-1]))


@dataclass(frozen=True)
class SizeResult:
    tenants: int
    runs: dict[Variant, list[Measurement]]

    def best(self, variant: Variant, metric: Callable[[Measurement], float]) -> float:
        """Times: the least disturbed run is the best estimate of the cost."""
        return min(map(metric, self.runs[variant]))

    def median(self, variant: Variant, metric: Callable[[Measurement], float]) -> float:
        return statistics.median(map(metric, self.runs[variant]))

    def ratios(self) -> dict[str, float]:
        """program/floor: wall and CPU time (best runs), peak RSS and RSS growth (medians)."""
        return {
            "wall": self.best("program", _wall) / self.best("floor", _wall),
            "CPU": self.best("program", _cpu) / self.best("floor", _cpu),
            "peak RSS": self.median("program", _peak) / self.median("floor", _peak),
            "RSS growth": self.median("program", _growth) / self.median("floor", _growth),
        }


def _wall(run: Measurement) -> float:
    return run.seconds


def _cpu(run: Measurement) -> float:
    return run.cpu_seconds


def _peak(run: Measurement) -> float:
    return run.peak_rss_mb


def _growth(run: Measurement) -> float:
    return run.growth_mb


def benchmark(sizes: Sequence[int], repeat: int) -> list[SizeResult]:
    results = []
    for tenants in sizes:
        runs: dict[Variant, list[Measurement]] = {variant: [] for variant in VARIANTS}
        for _ in range(repeat):
            for variant in VARIANTS:  # interleaved, so drift on a shared machine hits both alike
                runs[variant].append(run_child(variant, tenants))
        result = SizeResult(tenants, runs)
        results.append(result)
        print_size(result, repeat)
    return results


_COLUMNS: Final = (
    ("variant", 8),
    ("resources", 9),
    ("per pooled", 10),
    ("per silo", 8),
    ("wall s", 8),
    ("CPU s", 8),
    ("peak MB", 8),
    ("growth MB", 9),
)


def print_size(result: SizeResult, repeat: int) -> None:
    print(f"\n{result.tenants:,} tenants (times: best of {repeat}; memory: median)")
    print(
        "  "
        + " ".join(
            f"{name:<{width}}" if name == "variant" else f"{name:>{width}}" for name, width in _COLUMNS
        )
    )
    for variant in VARIANTS:
        counts = result.runs[variant][0]
        cells = (
            f"{variant:<8}",
            f"{counts.resources:>9}",
            f"{counts.per_pooled_tenant:>10.2f}",
            f"{counts.per_silo_tenant:>8.2f}",
            f"{result.best(variant, _wall):>8.2f}",
            f"{result.best(variant, _cpu):>8.2f}",
            f"{result.median(variant, _peak):>8.1f}",
            f"{result.median(variant, _growth):>9.1f}",
        )
        print("  " + " ".join(cells))
    print("  program/floor: " + ", ".join(f"{name} {ratio:.3f}x" for name, ratio in result.ratios().items()))
    sys.stdout.flush()


def print_targets(results: Sequence[SizeResult]) -> None:
    largest = max(results, key=lambda result: result.tenants)
    where = f"at {largest.tenants:,} tenants"
    if largest.tenants != TARGET_SIZE:
        where += " (target size not run)"
    checks = []
    for result in results:
        target = TARGET_WALL_RATIOS.get(result.tenants)
        if target is not None:
            ratio = result.ratios()["wall"]
            checks.append(
                (f"wall ratio {ratio:.3f} <= {target} at {result.tenants:,} tenants", ratio <= target)
            )
    peak = largest.ratios()["peak RSS"]
    checks.append((f"peak RSS ratio {peak:.3f} <= {TARGET_PEAK_RSS_RATIO}", peak <= TARGET_PEAK_RSS_RATIO))
    per_pooled = largest.runs["program"][0].per_pooled_tenant
    checks.append(
        (
            f"resources per pooled tenant {per_pooled:.2f} <= {TARGET_RESOURCES_PER_POOLED_TENANT}",
            per_pooled <= TARGET_RESOURCES_PER_POOLED_TENANT,
        )
    )
    print(f"\ntargets {where}:")
    for text, holds in checks:
        print(f"  {'ok  ' if holds else 'MISS'} {text}")


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes takes whole numbers separated by commas, got {text!r}"
        ) from None
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"--sizes takes positive tenant counts, got {text!r}")
    return sizes


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", type=parse_sizes, default=list(DEFAULT_SIZES), help="tenant counts, e.g. 100,1000"
    )
    parser.add_argument("--repeat", type=positive, default=1, help="runs per size and variant (default 1)")
    parser.add_argument("--run", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--tenants", type=positive, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run is not None:
        if args.tenants is None:
            parser.error("--run needs --tenants")
        with tempfile.TemporaryDirectory(prefix="program-scale-") as directory:
            print(json.dumps(asdict(measure(args.run, args.tenants, Path(directory)))))
        return 0
    print(
        f"program vs floor under Pulumi mocks; sizes {', '.join(map(str, args.sizes))}; repeat {args.repeat}"
    )
    print_targets(benchmark(args.sizes, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(cli())

"""The whole service set fits in the 8 GiB a Docker Desktop lab machine has. Start time and memory
are printed, never asserted as timings."""

from __future__ import annotations

from testbed import processes

GiB = 2**30


def test_the_whole_set_fits_in_8_gib(testbed, capsys):
    rss = processes.rss_bytes(processes.testbed_pids())
    per_service = ", ".join(f"{name} {value / 2**20:.0f}" for name, value in testbed.summary["rss"].items())
    with capsys.disabled():
        start = (f"started in {testbed.startup_s:.1f}s (services ready in {testbed.summary['total_s']:.1f}s)"
                 if testbed.started_here else f"reused (it started in {testbed.summary['total_s']:.1f}s)")
        print(f"\nservice testbed: {start}; total RSS now {rss / 2**20:.0f} MiB "
              f"(at start, MiB: {per_service})")
    assert rss < 8 * GiB

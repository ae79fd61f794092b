# CPU profile (issue 10): where the monitor's CPU goes per lease, by category, under the 2,000/s database-mode load.
.PHONY: profile

profile: build ## CPU profile of the bundle under the pinned Node at 2,000 leases/s, records on disk then on tmpfs (about a minute): per-lease table by category; BENCHMARKS.md untouched
	node --import tsx bench/run.ts --only profile --no-write $(BENCH_ARGS)

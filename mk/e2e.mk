# End-to-end suite and benchmarks (issue 4). Both need root: network namespaces, kea-dhcp4, perfdhcp, udhcpc.
.PHONY: e2e bench

e2e: build ## end-to-end: real kea-dhcp4 + perfdhcp/udhcpc in private netns, monitor in db and file mode
	node --import tsx test/e2e/run.ts

bench: build ## benchmarks (minutes): latency, burst, seed baseline, DB cost, footprint, catch-up -> BENCHMARKS.md
	node --import tsx bench/run.ts $(BENCH_ARGS)

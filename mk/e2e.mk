# End-to-end suite and benchmarks. Both need root: network namespaces, kea-dhcp4, perfdhcp, udhcpc.
.PHONY: e2e bench bench-redfish bench-fleet bench-footprint kea-roots

e2e: build ## end-to-end: kea-dhcp4 2.2.0, 2.6.3 and 3.0.4 (E2E_KEA=3.0.4 for one) + perfdhcp/udhcpc in private netns, monitor in db and file mode, then the Kea API writer on 3.0.4
	node --import tsx test/e2e/run.ts

kea-roots: ## build (once) the cached Debian roots holding Kea 2.6.3 (trixie) and 3.0.4 (forky) that make e2e runs chrooted
	test/lib/kea-rootfs.sh trixie
	test/lib/kea-rootfs.sh forky

bench: build ## benchmarks (about 30 min) beside the physical limits measured in the same run: latency (tmpfs, disk), burst, seed baseline, DB cost, CPU/RSS, catch-up, CPU profile -> BENCHMARKS.md
	node --import tsx bench/run.ts $(BENCH_ARGS)

bench-redfish: build ## db-mode latency and burst with --redfish-probe off and on (probes refused in a private netns); BENCH_ARGS="--quick"
	node --import tsx bench/redfish.ts $(BENCH_ARGS)

bench-fleet: build ## plan, reservations list, daemon start on the backlog and an idle reconcile pass at 20k and 200k live leases, with the growth; BENCH_ARGS="--quick"
	node --import tsx bench/fleet.ts $(BENCH_ARGS)

bench-footprint: build ## RSS at rest and at 1,000/s, CPU and start-up of binary variants (V8 flags, minified, snapshot) built into a temp dir; BENCH_ARGS="--runs 3"
	node --import tsx bench/footprint.ts $(BENCH_ARGS)

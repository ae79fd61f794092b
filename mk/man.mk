.PHONY: man
man: ## write the man page docs/kea-lease-monitor.1 from the option tables (src/man.ts)
	node --import tsx scripts/man.ts

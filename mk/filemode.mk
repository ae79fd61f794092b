# File mode at scale (issue 7, defect 8): peak RSS of the built binary replaying a large lease file.
.PHONY: replay-rss

replay-rss: build ## peak RSS (VmHWM) of a cold replay of 1,000,000 leases against a throwaway PostgreSQL (minutes; fails over 150 MB)
	node --import tsx bench/replay-rss.ts --leases $(or $(LEASES),1000000) --limit-mb $(or $(RSS_LIMIT_MB),150)

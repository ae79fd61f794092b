# Fault suite (issue 7): PostgreSQL outages, killed backends, half-open TCP, SIGKILL, full disk, failover,
# revoked privilege, a 1,000,000-lease burst, the HA pair. Needs root. Writes RELIABILITY.md. Up to 20 minutes.
.PHONY: faults

faults: build ## fault suite (minutes, root): every scenario 0 lost, 0 doubled -> RELIABILITY.md; FAULTS_ONLY=regex for some
	node --import tsx test/faults/run.ts

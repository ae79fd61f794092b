"""File mode: Kea appends a row to its lease file; the sandboxed service turns it into a reservation."""
import time

from klm import LEASE_FILE, cmdline, discovery_record, hosts_row, wait_for

MAC, IP = "aa:bb:cc:dd:ee:01", "10.99.7.51"


def test_execstart_has_no_database_events_flag(host):
    assert "--use-database-events" not in cmdline(host)


def test_lease_file_row_becomes_a_reservation_and_a_discovery_record(host, pg, env):
    row = f"{IP},{MAC},,3600,{int(time.time()) + 3600},{env.subnet},0,0,file-bmc,0,"
    assert host.run("echo %s >> %s", row, LEASE_FILE).rc == 0
    found = wait_for(lambda: hosts_row(pg, MAC) and discovery_record(host, MAC), 30)
    assert found, f"no reservation and record for {MAC}: hosts={hosts_row(pg, MAC)}"
    assert hosts_row(pg, MAC)[:2] == (int(env.subnet), IP)
    record = discovery_record(host, MAC)
    assert IP in str(record) and MAC in str(record)

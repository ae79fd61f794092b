"""Event mode: the trigger is in place and a lease4 row becomes a reservation and a record."""
from klm import BINARY, cmdline, discovery_record, hosts_row, query, wait_for

MAC, IP = "aa:bb:cc:dd:ee:ff", "10.99.7.50"


def test_execstart_has_the_database_events_flag(host):
    assert "--use-database-events" in cmdline(host)


def test_notify_trigger_is_on_lease4(pg):
    names = [r[0] for r in query(pg, "SELECT tgname FROM pg_trigger WHERE tgrelid = 'lease4'::regclass AND NOT tgisinternal"
                                     " AND tgname NOT IN ('lease4_ains', 'lease4_aupd', 'lease4_adel') ORDER BY 1")]
    assert names == ["kea_lm_lease4_notify_ins", "kea_lm_lease4_notify_upd"]


def test_db_status_reports_the_trigger(host, env):
    out = host.run(
        "env NODE_OPTIONS= KEA_LM_DB_HOST=/run/pgsock KEA_LM_DB_PORT=%s KEA_LM_DB_USER=kea_lease_monitor KEA_DB_PASSWORD=%s %s db status --json",
        env.pg_port, env.rt_pass, BINARY,
    )
    assert out.rc == 0, out.stderr
    assert '"notify_trigger": true' in out.stdout.replace('":true', '": true')


def test_lease4_row_becomes_a_reservation_and_a_discovery_record(host, pg, env):
    query(pg, "INSERT INTO lease4 (address, hwaddr, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state)"
              " VALUES (%s::inet - '0.0.0.0'::inet, decode(%s, 'hex'), 3600, now() + interval '1 hour', %s, false, false, 'test-bmc', 0)"
              " ON CONFLICT (address) DO UPDATE SET expire = now() + interval '1 hour'",
          IP, MAC.replace(":", ""), int(env.subnet))
    found = wait_for(lambda: hosts_row(pg, MAC) and discovery_record(host, MAC), 30)
    assert found, f"no reservation and record for {MAC}: hosts={hosts_row(pg, MAC)}"
    assert hosts_row(pg, MAC)[:2] == (int(env.subnet), IP)
    assert IP in str(discovery_record(host, MAC))

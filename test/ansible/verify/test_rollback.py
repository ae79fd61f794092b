"""After the rollback playbook (without removing reservations): file mode, no trigger, Kea's objects intact."""
from klm import cmdline, query, show


def test_trigger_and_its_functions_are_gone(pg, env):
    triggers = query(pg, "SELECT tgname FROM pg_trigger WHERE tgrelid = 'lease4'::regclass AND NOT tgisinternal"
                         " AND tgname NOT IN ('lease4_ains', 'lease4_aupd', 'lease4_adel')")
    writer = env.writer_functions.split(",")
    functions = query(pg, "SELECT coalesce(string_agg(proname, ',' ORDER BY proname), '') FROM pg_proc"
                          " WHERE pronamespace = 'public'::regnamespace AND NOT proname = ANY (%s)", writer)[0][0]
    assert (triggers, functions) == ([], env.base_functions)


def test_the_default_undo_keeps_the_reservation_writer(pg, env):
    # --notify-only keeps the version table, and with it the functions `run` needs to write.
    kept = query(pg, "SELECT coalesce(string_agg(proname, ',' ORDER BY proname), '') FROM pg_proc"
                     " WHERE pronamespace = 'public'::regnamespace AND proname = ANY (%s)", env.writer_functions.split(","))[0][0]
    assert kept == env.writer_functions


def test_keas_own_triggers_and_index_are_untouched(pg):
    assert query(pg, "SELECT count(*) FROM pg_trigger WHERE tgname IN ('lease4_ains', 'lease4_aupd', 'lease4_adel')")[0][0] == 3
    assert query(pg, "SELECT count(*) FROM pg_indexes WHERE indexname = 'key_dhcp4_identifier_subnet_id'")[0][0] == 1


def test_service_runs_in_file_mode(host):
    assert (show(host, "ActiveState"), show(host, "SubState")) == ("active", "running")
    assert "--use-database-events" not in cmdline(host)

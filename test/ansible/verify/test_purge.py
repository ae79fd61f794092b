"""After the rollback playbook with kea_rollback_remove_reservations: the service is stopped and disabled,
the monitor's own reservations are gone, an operator's reservation is left exactly as it was."""
from klm import operator_row, owned_host_ids, query, show


def test_service_is_stopped_and_disabled(host):
    assert show(host, "ActiveState") in ("inactive", "failed")
    assert show(host, "UnitFileState") == "disabled"


def test_no_reservation_with_the_monitors_mark_is_left(pg):
    assert owned_host_ids(pg) == []


def test_the_operators_reservation_survives_unchanged(pg, env):
    assert operator_row(pg, env) == [("10.99.7.200", "ops-pinned", '{"owner":"ops"}')]


def test_other_rows_are_not_removed(pg, env):
    # Only the marked rows go: the count left is exactly the rows that never carried the mark.
    assert query(pg, "SELECT count(*) FROM hosts")[0][0] == int(env.unowned_rows)

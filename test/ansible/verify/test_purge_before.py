"""Before the undo: the monitor owns reservations (marked in user_context) beside an operator's row.
Without rows to remove, test_purge.py would prove nothing."""
from klm import operator_row, owned_host_ids


def test_the_monitor_has_marked_its_reservations(pg):
    assert len(owned_host_ids(pg)) >= 2, "no reservation carries the monitor's mark in user_context"


def test_the_operators_reservation_is_as_the_operator_wrote_it(pg, env):
    assert operator_row(pg, env) == [("10.99.7.200", "ops-pinned", '{"owner":"ops"}')]

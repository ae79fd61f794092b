"""The service's journal: readable, holding the service's own lines, and free of secrets."""
from klm import SERVICE

STARTUP_LINE = "Starting kea-lease-monitor"


def journal(host):
    out = host.run("journalctl --no-pager -o cat -u %s", SERVICE)
    # A failing journalctl, or one that finds nothing ("-- No entries --"), proves nothing below.
    assert out.rc == 0, f"journalctl failed (rc {out.rc}): {out.stderr}"
    assert STARTUP_LINE in out.stdout, f"the journal holds none of the service's lines: {out.stdout[-500:]!r}"
    return out.stdout


def test_journal_is_readable_and_holds_the_services_lines(host):
    journal(host)


def test_no_password_in_the_journal(host, env):
    text = journal(host)
    assert env.rt_pass not in text and env.mig_pass not in text

"""The service's journal: readable, and free of secrets."""
from klm import SERVICE


def test_journal_is_readable_and_holds_the_services_lines(host):
    out = host.run("journalctl --no-pager -o cat -u %s", SERVICE)
    assert out.rc == 0, f"journalctl failed (rc {out.rc}): {out.stderr}"
    assert out.stdout.strip(), "the service's journal is empty"


def test_no_password_in_the_journal(host, env):
    out = host.run("journalctl --no-pager -o cat -u %s", SERVICE)
    assert out.rc == 0 and out.stdout.strip(), f"journalctl failed (rc {out.rc}): {out.stderr}"
    assert env.rt_pass not in out.stdout and env.mig_pass not in out.stdout

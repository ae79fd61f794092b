"""Helpers and paths shared by the verify tests."""
import json
import time

SERVICE = "kea-lease-monitor.service"
UNIT = "/etc/systemd/system/" + SERVICE
BINARY = "/opt/baremetal/kea-lease-monitor/kea-lease-monitor"
RELEASES = "/opt/baremetal/kea-lease-monitor/releases"
CONFIG = "/etc/kea-lease-monitor/config.yml"
ENV_FILE = "/etc/kea-lease-monitor/kea-lease-monitor.env"
CREDENTIAL = "/etc/kea-lease-monitor/db-password"
OUTPUT_DIR = "/var/lib/kea/discovery"
LEASE_FILE = "/var/lib/kea/kea-leases4.csv"


def query(pg, sql, *params):
    with pg.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def show(host, prop):
    """One property of the unit, as systemd applies it."""
    out = host.run("systemctl show %s -p %s --value", SERVICE, prop)
    assert out.rc == 0, out.stderr
    return out.stdout.strip()


def main_pid(host):
    pid = show(host, "MainPID")
    assert pid not in ("", "0"), f"{SERVICE} has no main process"
    return pid


def cmdline(host):
    """The service's real argv, as the kernel holds it."""
    out = host.run("tr '\\0' '\\n' < /proc/%s/cmdline", main_pid(host))
    assert out.rc == 0, out.stderr
    return out.stdout.rstrip("\n").split("\n")


def http_get(host, url):
    """(status, body) of a GET inside the container (no curl there: the container's python)."""
    code = (
        "import sys, urllib.request, urllib.error\n"
        "try:\n"
        "    r = urllib.request.urlopen(sys.argv[1], timeout=5); print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code); print(e.read().decode())\n"
        "except Exception as e:\n"
        "    print(-1); print(repr(e))\n"
    )
    out = host.run("python3 -c %s %s", code, url)
    status, _, body = out.stdout.partition("\n")
    return int(status or -1), body.strip()


def wait_for(fn, timeout=30.0, step=0.5):
    """Poll fn() until it returns something truthy; return the last value."""
    deadline = time.monotonic() + timeout
    value = fn()
    while not value and time.monotonic() < deadline:
        time.sleep(step)
        value = fn()
    return value


def hosts_row(pg, mac):
    rows = query(
        pg,
        "SELECT dhcp4_subnet_id, host('0.0.0.0'::inet + ipv4_address), hostname, user_context FROM hosts"
        " WHERE dhcp_identifier = decode(%s, 'hex') AND dhcp_identifier_type = 0",
        mac.replace(":", ""),
    )
    return rows[0] if rows else None


def discovery_record(host, mac):
    f = host.file(f"{OUTPUT_DIR}/{mac.replace(':', '-')}.json")
    return json.loads(f.content_string) if f.exists else None


MARK = "kea-lease-monitor"


def owned_host_ids(pg):
    """host_ids of the rows carrying the monitor's ownership mark in user_context."""
    rows = query(pg, "SELECT host_id, user_context FROM hosts WHERE user_context IS NOT NULL AND user_context <> ''")
    return sorted(r[0] for r in rows if MARK in (json.loads(r[1]) or {}))


def operator_row(pg, env):
    return query(
        pg,
        "SELECT host('0.0.0.0'::inet + ipv4_address), hostname, user_context FROM hosts WHERE host_id = %s",
        int(env.operator_host_id),
    )

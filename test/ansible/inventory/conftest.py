"""Fixtures for the inventory plugin test: the collection built and installed into a temp collections path,
a throwaway PostgreSQL with the real Kea schema (scripts/pg-throwaway.sh), and the built monitor binary in
file mode writing discovery records from real lease files and serving them on its metrics listener."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.join(REPO, "dist", "kea-lease-monitor")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
CSV_HEADER = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.05)


def stem(mac):
    return mac.replace(":", "-")


@pytest.fixture(scope="session")
def workdir():
    path = tempfile.mkdtemp(prefix="klm-inventory-")
    yield path
    if os.environ.get("KLM_KEEP") != "1":
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def collections(workdir):
    """ANSIBLE_COLLECTIONS_PATH holding the collection as `ansible-galaxy collection install` puts it.
    KLM_COLLECTIONS_PATH: one where this tree's collection is already installed (building takes a minute)."""
    if os.environ.get("KLM_COLLECTIONS_PATH"):
        return os.environ["KLM_COLLECTIONS_PATH"]
    build = os.path.join(workdir, "build")
    # The way `make collection` builds it (galaxy.yml lives in collection/, staged with the role and plugins).
    subprocess.run([os.path.join(REPO, "ansible", "build-collection.sh"), build], check=True, capture_output=True)
    (tarball,) = [os.path.join(build, n) for n in os.listdir(build) if n.endswith(".tar.gz")]
    path = os.path.join(workdir, "collections")
    subprocess.run(["ansible-galaxy", "collection", "install", "--no-deps", "-p", path, tarball], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def database():
    """The unix socket directory and port of a throwaway cluster holding the real Kea schema in "kea"."""
    assert os.access(BIN, os.X_OK), "%s is missing: run make build" % BIN
    path = tempfile.mkdtemp(prefix="klm-inventory-pg-")
    out = subprocess.run([os.path.join(REPO, "scripts", "pg-throwaway.sh"), "start", path], check=True, capture_output=True, text=True)
    port = [line.split("=", 1)[1] for line in out.stdout.splitlines() if line.startswith("PGPORT=")][0]
    yield {"host": path, "port": port}
    subprocess.run([os.path.join(REPO, "scripts", "pg-throwaway.sh"), "stop", path], check=False)


class Monitor:
    """The built binary in file mode on a lease file of its own; records in `out`, served at `url`."""

    def __init__(self, database, workdir, name, dbname):
        self.dir = os.path.join(workdir, name)
        self.out = os.path.join(self.dir, "discovery")
        self.lease_file = os.path.join(self.dir, "kea-leases4.csv")
        os.makedirs(self.dir)
        with open(self.lease_file, "w") as f:
            f.write(CSV_HEADER + "\n")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(self.dir, "monitor.log"), "wb")
        self.proc = subprocess.Popen(
            [BIN, "--db-host", database["host"], "--db-port", database["port"], "--db-name", dbname, "--db-user", "postgres",
             "--lease-file", self.lease_file, "--output-dir", self.out, "--metrics-port", str(self.port), "--poll-interval", "0.2"],
            env={"PATH": "/usr/bin:/bin"}, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir,
        )

    def lease(self, ip, mac, hostname="", subnet=1):
        """Appends a lease the way kea-dhcp4's memfile backend does, and waits for its record to say so."""
        expire = int(time.time()) + 3600
        row = [ip, mac, "01:" + mac, "3600", str(expire), str(subnet), "0", "0", hostname.replace(",", "&#x2c"), "0", ""]
        with open(self.lease_file, "a") as f:
            f.write(",".join(row) + "\n")
        wait_for("record of %s at %s (see %s)" % (mac, ip, self.log.name), lambda: (self.record(mac) or {}).get("ip") == ip)

    def record(self, mac):
        try:
            with open(os.path.join(self.out, stem(mac) + ".json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def plant(self, name, record):
        """A file in the output directory as another writer (or an attacker) would leave it."""
        tmp = os.path.join(self.out, "." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write(record if isinstance(record, str) else json.dumps(record))
        os.rename(tmp, os.path.join(self.out, name))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        self.log.close()


@pytest.fixture
def monitors(database, workdir, request):
    """monitors(n): n running monitors on one database of this test's own (real Kea schema), stopped after it."""
    started = []
    dbname = "t_" + request.node.name[:50]
    psql = [os.path.join(PGBIN, "psql"), "-X", "-q", "-h", database["host"], "-p", database["port"], "-U", "postgres", "-d", "postgres"]
    subprocess.run(psql + ["-c", 'CREATE DATABASE "%s" TEMPLATE kea' % dbname], check=True, capture_output=True)
    # `run` writes through the functions `db migrate` installs.
    subprocess.run([BIN, "db", "migrate", "--db-host", database["host"], "--db-port", database["port"], "--db-name", dbname,
                    "--db-user", "postgres"], env={"PATH": "/usr/bin:/bin"}, check=True, capture_output=True)

    def start(n=1):
        for i in range(n):
            m = Monitor(database, workdir, "%s-%d" % (request.node.name, len(started) + i), dbname)
            started.append(m)
        wait_for("metrics listeners", lambda: all(_answers(m.port) for m in started[-n:]))
        return started[-n:]

    yield start
    for m in started:
        m.stop()


def _answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def inventory(collections, workdir, request):
    """inventory(source_dict, *args): runs ansible-inventory -i <file>.kea_lease_monitor.yml from an empty
    directory (no ansible.cfg) with only ANSIBLE_COLLECTIONS_PATH set; returns the CompletedProcess."""
    import yaml

    base = os.path.join(workdir, "sources", request.node.name)
    os.makedirs(base)

    def run(source, *args, check=True):
        # One file per distinct source: the inventory cache is keyed by the file's path.
        text = json.dumps(source, sort_keys=True).encode()
        path = os.path.join(base, "%s.kea_lease_monitor.yml" % hashlib.sha256(text).hexdigest()[:12])
        with open(path, "w") as f:
            yaml.safe_dump(source, f)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": base, "ANSIBLE_COLLECTIONS_PATH": collections,
               "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
        r = subprocess.run(["ansible-inventory", "-i", path] + list(args), cwd=base, env=env, capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, "ansible-inventory failed:\n%s\n%s" % (r.stdout, r.stderr)
        return r

    return run

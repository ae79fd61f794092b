"""Fixtures of the Ansible bundle's verify tests (testinfra, the verifier Molecule uses).

test/ansible/run.sh runs them after each playbook, against the booted container:
  python3 -m pytest --hosts=nsenter://<container leader pid> test/ansible/verify/test_<phase>.py
with what a test needs to know in KLM_* environment variables (the `env` fixture)."""
import os

import pytest
import testinfra.backend

testinfra.backend.BACKENDS["nsenter"] = "nsenter_backend.NsenterBackend"


class Env(dict):
    def __getattr__(self, name):
        key = "KLM_" + name.upper()
        if key not in os.environ:
            pytest.fail(f"{key} is not set by the harness")
        return os.environ[key]


@pytest.fixture(scope="session")
def env():
    return Env()


@pytest.fixture(scope="session")
def pg(env):
    import psycopg2

    conn = psycopg2.connect(host=env.pg_host, port=int(env.pg_port), user="postgres", dbname="kea")
    conn.autocommit = True
    yield conn
    conn.close()

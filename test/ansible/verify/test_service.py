"""The converged service, in either mode: what the role installed and how systemd runs it."""
import hashlib
import pathlib

import yaml

from klm import BINARY, CONFIG, RELEASES, CREDENTIAL, LEASE_FILE, ENV_FILE, OUTPUT_DIR, UNIT, cmdline, http_get, main_pid, show, wait_for


def test_service_is_active_and_running(host):
    assert (show(host, "ActiveState"), show(host, "SubState")) == ("active", "running")


def test_service_is_enabled(host):
    assert show(host, "UnitFileState") == "enabled"


def test_service_runs_the_installed_binary(host):
    # BINARY links to the current build under releases/.
    release = host.file(BINARY).linked_to
    assert release.startswith(RELEASES + "/"), f"{BINARY} -> {release}"
    assert host.file(f"/proc/{main_pid(host)}/exe").linked_to == release


def test_installed_binary_is_the_one_the_collection_carries(host, env):
    expected = hashlib.sha256(pathlib.Path(env.binary).read_bytes()).hexdigest()
    assert host.file(BINARY).sha256sum == expected


def test_service_runs_as_the_dedicated_user(host):
    assert host.file(f"/proc/{main_pid(host)}").user == "kea-lease-monitor"


def test_service_user_has_no_login_shell(host):
    assert host.user("kea-lease-monitor").shell == "/usr/sbin/nologin"


def test_install_dir_is_root_owned_0755(host):
    d = host.file("/opt/baremetal/kea-lease-monitor")
    assert (d.user, d.group, d.mode) == ("root", "root", 0o755)


def test_output_dir_is_owned_by_the_service_user(host):
    assert host.file(OUTPUT_DIR).user == "kea-lease-monitor"


def test_credential_is_root_owned_0600(host):
    f = host.file(CREDENTIAL)
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)


def test_config_file_is_readable_by_the_service_group_only(host):
    f = host.file(CONFIG)
    assert (f.user, f.group, f.mode) == ("root", "kea-lease-monitor", 0o640)


def test_config_file_holds_the_run_flags_by_their_long_names(host, env):
    config = yaml.safe_load(host.file(CONFIG).content_string)
    assert config["subnet-id"] == [int(env.subnet)]
    assert "writer" not in config  # sql, the binary's default
    # The harness's inventory sets a policy that lets its test leases through.
    assert config["allow-mac-prefix"] == ["aa:bb:cc", "02:aa"]
    assert config["max-reservations-per-subnet"] == 1000
    assert "kea-control-socket" not in config


def test_service_is_started_with_the_config_file(host):
    argv = cmdline(host)
    assert argv[argv.index("--config") + 1] == CONFIG


def test_execstart_quotes_each_extra_argument(host, env):
    # The inventory passes one argument holding spaces; unquoted, systemd would split it.
    argv = cmdline(host)
    assert argv[-2:] == ["--deny-hostname", env.extra_deny]


def test_unit_clears_node_options_and_loads_the_credential(host):
    assert "NODE_OPTIONS=" in show(host, "Environment").split()
    assert "LoadCredential=db-password:" + CREDENTIAL in host.file(UNIT).content_string.splitlines()


def test_unit_drops_the_binary_from_the_page_cache_before_it_starts(host):
    # systemd keeps no status of a start's ExecStartPre once the main process runs, and the "-" prefix would let a
    # failure pass unseen: the same command must succeed as the service user.
    pre = show(host, "ExecStartPre")
    argv = f"/usr/bin/dd if={BINARY} iflag=nocache count=0 status=none"
    assert f"argv[]={argv} ; ignore_errors=yes ;" in pre, pre
    out = host.run("runuser -u kea-lease-monitor -- /usr/bin/dd if=%s iflag=nocache count=0 status=none", BINARY)
    assert out.rc == 0, out.stderr


def test_unit_does_not_set_memory_deny_write_execute(host):
    # V8 needs writable and executable pages: with it Node dies with SIGTRAP in a restart loop.
    assert show(host, "MemoryDenyWriteExecute") == "no"


def test_a_configuration_error_is_not_restarted(host):
    assert show(host, "RestartPreventExitStatus") == "2"


def test_a_crash_loop_hits_a_start_limit(host):
    assert show(host, "StartLimitBurst") == "5"
    assert show(host, "StartLimitIntervalUSec") == "5min"


def test_no_password_in_the_unit_its_files_or_the_process(host, env):
    texts = {
        UNIT: host.file(UNIT).content_string,
        ENV_FILE: host.file(ENV_FILE).content_string,
        CONFIG: host.file(CONFIG).content_string,
        "ExecStart": show(host, "ExecStart"),
        "argv": "\n".join(cmdline(host)),
        "environ": host.run("tr '\\0' '\\n' < /proc/%s/environ", main_pid(host)).stdout,
    }
    empty = [name for name, text in texts.items() if not text.strip()]
    assert not empty, f"nothing read from {empty}"
    for password in (env.rt_pass, env.mig_pass):
        leaks = [name for name, text in texts.items() if password in text]
        assert not leaks, f"a password is in {leaks}"


def test_readyz_answers_200(host, env):
    wait_for(lambda: http_get(host, env.ready_url)[0] == 200, 30)
    status, body = http_get(host, env.ready_url)
    assert status == 200, f"GET {env.ready_url}: {status} {body}"


def test_systemd_analyze_verify_prints_nothing(host):
    out = host.run("systemd-analyze verify %s", UNIT)
    assert (out.rc, out.stdout + out.stderr) == (0, "")


def test_security_exposure_is_at_most_2(host):
    out = host.run("systemd-analyze security --offline=yes %s", UNIT)
    score = [l for l in out.stdout.splitlines() if "Overall exposure level" in l]
    assert score, out.stdout + out.stderr
    value = float(score[0].split(":")[1].split()[0])
    print(f"exposure {value}")
    assert value <= 2.0


def test_service_user_joins_keas_group_where_it_exists(host, env):
    # The harness says whether this release has Kea's group (Debian 13 with Kea 3.0's layout) or not.
    expected = env.kea_group == "_kea"
    assert host.group("_kea").exists == expected
    assert ("_kea" in host.user("kea-lease-monitor").groups) == expected
    assert ("_kea" in show(host, "SupplementaryGroups").split()) == expected


def test_service_user_can_read_the_lease_file(host):
    # On Debian 13 the file is _kea:_kea 0640: only the group membership lets the service user read it.
    out = host.run("setpriv --reuid kea-lease-monitor --regid kea-lease-monitor --init-groups head -c 7 %s", LEASE_FILE)
    assert (out.rc, out.stdout) == (0, "address"), out.stderr

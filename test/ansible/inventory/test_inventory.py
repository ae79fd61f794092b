"""ansible-inventory with the baremetal.kea_lease_monitor.kea_lease_monitor plugin against running monitors
(the built binary) whose records come from real lease files and a real Kea schema."""
import json
import os
import re
import subprocess

from conftest import stem

PLUGIN = "baremetal.kea_lease_monitor.kea_lease_monitor"
A, B, C, D = "0c:c4:7a:00:00:01", "0c:c4:7a:00:00:02", "0c:c4:7a:00:00:03", "0c:c4:7a:00:00:04"


def unsafe(value):
    """What ansible-inventory --list prints for a value marked unsafe (never templated)."""
    return {"__ansible_unsafe": value}


def flat(text):
    """Ansible wraps warnings at 80 columns."""
    return re.sub(r"\s+", " ", text)


def listing(result):
    data = json.loads(result.stdout)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    groups = dict((g, sorted(v.get("hosts", []))) for g, v in data.items() if g != "_meta")
    return hostvars, groups


def test_hosts_named_by_mac_with_vars_and_default_groups(monitors, inventory):
    (m,) = monitors(1)
    m.lease("10.0.1.11", A, "node-a")
    m.lease("10.0.2.12", B, "node-b", subnet=2)
    hostvars, groups = listing(inventory({"plugin": PLUGIN, "urls": [m.url]}, "--list"))

    assert sorted(hostvars) == [stem(A), stem(B)]
    a = hostvars[stem(A)]
    record = m.record(A)
    assert a["ansible_host"] == "10.0.1.11"
    assert (a["klm_mac"], a["klm_ip"], a["klm_subnet_id"], a["klm_hostname"]) == (A, "10.0.1.11", 1, unsafe("node-a"))
    assert (a["klm_reservation"], a["klm_source"], a["klm_host_id"]) == ("created", "memfile", record["host_id"])
    assert isinstance(a["klm_host_id"], int)
    assert (a["klm_first_seen"], a["klm_last_seen"]) == (record["first_seen"], record["last_seen"])
    assert not any(k.startswith("klm_redfish") for k in a), "no Redfish variables without a redfish object"
    assert groups["subnet_1"] == [stem(A)] and groups["subnet_2"] == [stem(B)]
    assert groups["reservation_created"] == [stem(A), stem(B)]

    graph = inventory({"plugin": PLUGIN, "urls": [m.url]}, "--graph").stdout
    assert "@subnet_1:" in graph and "|--" + stem(A) in graph.replace(" ", "")


def test_ha_pair_shows_each_device_once_from_the_newest_record(monitors, inventory):
    one, two = monitors(2)
    one.lease("10.0.1.21", A, "a")
    one.lease("10.0.1.22", B, "b")
    two.lease("10.0.1.22", B, "b")  # the same lease, seen by the partner
    two.lease("10.0.1.29", A, "a")  # A renewed later through the second server, at another address
    one.lease("10.0.1.23", C, "c")  # only the first knows C
    for urls in ([one.url, two.url], [two.url, one.url]):
        hostvars, _ = listing(inventory({"plugin": PLUGIN, "urls": urls}, "--list"))
        assert sorted(hostvars) == [stem(A), stem(B), stem(C)], urls
        assert hostvars[stem(A)]["ansible_host"] == "10.0.1.29", "the newest last_seen wins, whatever the order"
        assert hostvars[stem(A)]["klm_last_seen"] == two.record(A)["last_seen"]
        assert hostvars[stem(B)]["klm_last_seen"] == max(one.record(B)["last_seen"], two.record(B)["last_seen"])

    # One monitor of the pair down: a warning, the other's records; require_all_urls makes it an error.
    two.stop()
    r = inventory({"plugin": PLUGIN, "urls": [one.url, two.url]}, "--list")
    assert sorted(listing(r)[0]) == [stem(A), stem(B), stem(C)]
    assert "skipped " + two.url + "/discovery" in flat(r.stderr)
    r = inventory({"plugin": PLUGIN, "urls": [one.url, two.url], "require_all_urls": True}, "--list", check=False)
    assert r.returncode != 0 and two.url + "/discovery" in flat(r.stderr)
    r = inventory({"plugin": PLUGIN, "urls": [two.url]}, "--list", check=False)
    assert r.returncode != 0, "no monitor answering is an error, not an empty inventory"


def test_hostname_source_sanitizes_and_deduplicates_untrusted_hostnames(monitors, inventory, workdir):
    (m,) = monitors(1)
    marker = os.path.join(workdir, "templated")
    hostile = "{{ lookup('pipe', 'touch %s') }}" % marker
    m.lease("10.0.1.31", A, "Web-1.Example.NET")
    m.lease("10.0.1.32", B, "twin")
    m.lease("10.0.1.33", C, "TWIN")  # collides with B once lowercased
    m.lease("10.0.1.34", D, hostile)
    m.lease("10.0.1.35", "0c:c4:7a:00:00:05", stem(A))  # pretends to be A's MAC name
    m.lease("10.0.1.36", "0c:c4:7a:00:00:06", "localhost")
    m.lease("10.0.1.37", "0c:c4:7a:00:00:07", "10.0.0.1")
    m.lease("10.0.1.38", "0c:c4:7a:00:00:08", "nöde 8")
    source = {"plugin": PLUGIN, "urls": [m.url], "hostname_source": "hostname", "compose": {"hn": "klm_hostname"}}
    r = inventory(source, "--list")
    hostvars, _ = listing(r)

    by_mac = dict((v["klm_mac"], k) for k, v in hostvars.items())
    assert by_mac[A] == "web-1.example.net"
    assert (by_mac[B], by_mac[C]) == (stem(B), stem(C)), "a shared hostname names neither device"
    assert "twin" in flat(r.stderr) and "used by 2 devices" in flat(r.stderr)
    assert by_mac["0c:c4:7a:00:00:05"] == "0c-c4-7a-00-00-05", "a hostname shaped like a MAC name is refused"
    assert by_mac["0c:c4:7a:00:00:06"] == "0c-c4-7a-00-00-06"
    assert by_mac["0c:c4:7a:00:00:07"] == "0c-c4-7a-00-00-07"
    assert by_mac["0c:c4:7a:00:00:08"] == "n-de-8"
    hostile_name = by_mac[D]
    assert all(ch.isalnum() or ch in ".-" for ch in hostile_name) and hostile_name.startswith("lookup-pipe-touch-")
    assert len(hostvars) == 8 and len(set(by_mac.values())) == 8
    # The raw hostname is a variable, never templated (it is marked unsafe), even through compose.
    assert not os.path.exists(marker), "the hostile hostname was templated: it ran a command on the controller"
    assert hostvars[hostile_name]["klm_hostname"] == unsafe(hostile)
    assert hostvars[hostile_name]["hn"] == unsafe(hostile)


def test_untrusted_records_are_validated_and_redfish_fields_become_vars_and_groups(monitors, inventory):
    (m,) = monitors(1)
    m.lease("10.0.1.41", A, "bmc-a")
    m.lease("10.0.1.42", B, "bmc-b")
    record = m.record(A)
    record["redfish"] = {"status": "present", "version": "1.15.0", "uuid": "92384634-2938-2342-8820-489239905423",
                         "vendor": "Contoso {{ 7 * 7 }} Ltd.", "product": "X\u0007" + "y" * 10, "probed_at": record["last_seen"]}
    m.plant(stem(A) + ".json", record)
    bad = dict(m.record(B))
    m.plant("0c-c4-7a-00-00-0a.json", dict(bad, mac="0c:c4:7a:00:00:0a", ip="10.0.1.999"))
    m.plant("0c-c4-7a-00-00-0b.json", dict(bad, mac="not a mac"))
    m.plant("0c-c4-7a-00-00-0c.json", dict(bad, mac="0c:c4:7a:00:00:0c", subnet_id=True))
    m.plant("0c-c4-7a-00-00-0d.json", dict(bad, mac="0c:c4:7a:00:00:0d", reservation="pwned"))
    m.plant("0c-c4-7a-00-00-0e.json", dict(bad, mac="0c:c4:7a:00:00:0e", last_seen="yesterday"))
    r = inventory({"plugin": PLUGIN, "urls": [m.url]}, "--list")
    hostvars, groups = listing(r)

    assert sorted(hostvars) == [stem(A), stem(B)]
    assert "skipped 5 invalid record(s)" in flat(r.stderr)
    a = hostvars[stem(A)]
    assert a["klm_redfish_status"] == "present" and a["klm_redfish_version"] == unsafe("1.15.0")
    assert a["klm_redfish_uuid"] == unsafe("92384634-2938-2342-8820-489239905423")
    assert a["klm_redfish_vendor"] == unsafe("Contoso {{ 7 * 7 }} Ltd."), "kept as sent, never templated"
    assert a["klm_redfish_product"] is None, "a control character makes a device string unusable"
    assert groups["redfish_vendor_contoso_7_7_ltd"] == [stem(A)]
    assert not any(k.startswith("klm_redfish") for k in hostvars[stem(B)])


def test_keyed_groups_compose_and_groups_from_the_plugin_file(monitors, inventory):
    (m,) = monitors(1)
    m.lease("10.0.1.51", A, "a")
    m.lease("10.0.3.52", B, "b", subnet=3)
    source = {
        "plugin": PLUGIN,
        "urls": [m.url + "/discovery"],
        "var_prefix": "kea_",
        "default_groups": False,
        "compose": {"bmc_url": "'https://' + ansible_host + '/redfish/v1'"},
        "keyed_groups": [{"key": "kea_subnet_id | string", "prefix": "net"}, {"key": "kea_reservation", "prefix": "res"}],
        "groups": {"in_subnet_3": "kea_subnet_id == 3"},
    }
    hostvars, groups = listing(inventory(source, "--list"))
    assert hostvars[stem(A)]["bmc_url"] == "https://10.0.1.51/redfish/v1"
    assert hostvars[stem(A)]["kea_mac"] == A and "klm_mac" not in hostvars[stem(A)]
    assert groups["net_1"] == [stem(A)] and groups["net_3"] == [stem(B)]
    assert groups["res_created"] == [stem(A), stem(B)]
    assert groups["in_subnet_3"] == [stem(B)]
    assert not any(g.startswith(("subnet_", "reservation_")) for g in groups)


def test_cache_answers_while_the_monitor_is_down(monitors, inventory, workdir):
    (m,) = monitors(1)
    m.lease("10.0.1.61", A, "a")
    cache_dir = os.path.join(workdir, "cache-" + str(m.port))
    source = {"plugin": PLUGIN, "urls": [m.url], "cache": True, "cache_plugin": "ansible.builtin.jsonfile",
              "cache_connection": cache_dir, "cache_timeout": 3600}
    assert sorted(listing(inventory(source, "--list"))[0]) == [stem(A)]
    assert os.listdir(cache_dir), "the cache was written"
    m.stop()
    assert sorted(listing(inventory(source, "--list"))[0]) == [stem(A)], "served from the cache"
    assert inventory(source, "--list", "--flush-cache", check=False).returncode != 0, "--flush-cache asks the monitor again"


def test_bad_source_files_fail_with_a_clear_error(inventory):
    r = inventory({"plugin": PLUGIN, "urls": ["ftp://kea1.example.net/"]}, "--list", check=False)
    assert r.returncode != 0 and "is not an http:// or https:// URL" in flat(r.stderr)
    r = inventory({"plugin": PLUGIN, "urls": ["http://127.0.0.1:1"], "hostname_source": "client"}, "--list", check=False)
    assert r.returncode != 0 and "hostname_source" in flat(r.stderr)


def test_ansible_doc_renders_the_plugin(collections):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections)
    r = subprocess.run(["ansible-doc", "-t", "inventory", PLUGIN], env=env, capture_output=True, text=True, check=True)
    for word in ("urls", "hostname_source", "keyed_groups", "cache_plugin", "EXAMPLES"):
        assert word in r.stdout

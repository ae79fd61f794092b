"""The role's interface, checked from its files (no container needed)."""
import json
import pathlib
import re

import yaml

REPO = pathlib.Path(__file__).resolve().parents[3]
ROLE = REPO / "roles" / "kea_lease_monitor"
# Names the design and the issues fixed; everything else public starts with kea_lease_monitor_.
FIXED_NAMES = {"kea_enable_database", "kea_db_enable_notify", "kea_rollback_remove_reservations"}
ROLE_TAGS = {f"kea_lease_monitor_{t}" for t in ("install", "configure", "database", "service", "verify")}


def load(path):
    return yaml.safe_load(path.read_text())


def specs():
    return load(ROLE / "meta" / "argument_specs.yml")["argument_specs"]


def task_files():
    return sorted((ROLE / "tasks").glob("*.yml")) + [ROLE / "handlers" / "main.yml"]


def test_argument_specs_carry_the_defaults_of_defaults_main():
    defaults = load(ROLE / "defaults" / "main.yml")
    options = specs()["main"]["options"]
    assert sorted(defaults) == sorted(options), "defaults/main.yml and argument_specs.yml list different variables"
    wrong = {k: (defaults[k], options[k].get("default")) for k in defaults if defaults[k] != options[k].get("default")}
    assert not wrong, f"default differs (defaults/main.yml, argument_specs.yml): {wrong}"


def test_rollback_entry_point_has_the_same_options():
    s = specs()
    assert s["rollback"]["options"] == s["main"]["options"]


def test_public_variables_use_one_prefix():
    bad = [k for k in specs()["main"]["options"] if not k.startswith("kea_lease_monitor_") and k not in FIXED_NAMES]
    assert not bad, f"public variables outside the kea_lease_monitor_ prefix: {bad}"


def test_internal_variables_start_with_an_underscore():
    internal = set(load(ROLE / "vars" / "main.yml"))
    for f in task_files():
        for task in _tasks(load(f) or []):
            if "register" in task:
                internal.add(task["register"])
            internal.update((task.get("ansible.builtin.set_fact") or {}).keys())
    bad = sorted(n for n in internal if not n.startswith("_kea_lease_monitor_"))
    assert not bad, f"internal variables without the _kea_lease_monitor_ prefix: {bad}"


def test_every_variable_the_role_reads_is_declared():
    declared = set(specs()["main"]["options"])
    text = "\n".join(p.read_text() for p in ROLE.rglob("*") if p.is_file() and p.suffix in (".yml", ".j2"))
    used = set(re.findall(r"\b(kea_lease_monitor_[a-z0-9_]+|kea_[a-z]+_[a-z_]+)\b", text))
    used = {u for u in used if u != "kea_lease_monitor_" and not u.startswith("kea_lease_monitor_options")} - ROLE_TAGS
    undeclared = sorted(u for u in used - declared if u.startswith("kea_lease_monitor_") or u in FIXED_NAMES)
    assert not undeclared, f"read but not in argument_specs.yml: {undeclared}"


def test_every_task_has_one_of_the_role_tags_or_inherits_it():
    allowed = ROLE_TAGS | {"always"}
    for entry in ("main.yml", "rollback.yml"):
        for task in load(ROLE / "tasks" / entry):
            tags = set(task.get("tags", []))
            if "block" in task:  # a block's tasks carry their own
                tags = set.intersection(*[set(t.get("tags", [])) for t in task["block"]]) or tags
                for t in task["block"]:
                    assert set(t.get("tags", [])) & allowed, f"tasks/{entry}: {t['name']!r} has no role tag"
                continue
            if task.get("ansible.builtin.import_tasks", "").startswith("rollback_"):
                for t in load(ROLE / "tasks" / task["ansible.builtin.import_tasks"]):
                    assert set(t.get("tags", [])) & allowed, f"tasks/{task['ansible.builtin.import_tasks']}: {t['name']!r} has no role tag"
                continue
            assert tags & allowed, f"tasks/{entry}: {task['name']!r} has no role tag"
    generic = [f.name for f in task_files() if re.search(r"tags: \[(install|configure|database|service|verify)\b", f.read_text())]
    assert not generic, f"tags without the role prefix in {generic}"


def test_the_db_command_block_exists_once():
    hits = [f.name for f in task_files() if "stdin: \"{{ kea_lease_monitor_db_migration_password }}\"" in f.read_text()]
    assert hits == ["db_command.yml"], hits


def test_collection_version_is_the_package_version():
    galaxy = load(REPO / "collection" / "galaxy.yml")
    package = json.loads((REPO / "package.json").read_text())
    assert galaxy["version"] == package["version"]


def _tasks(items):
    for t in items:
        if not isinstance(t, dict):
            continue
        yield t
        for key in ("block", "rescue", "always"):
            yield from _tasks(t.get(key, []))


def rendered_config(**overrides):
    """The run flags the role writes to config.yml, templated by Ansible itself from the role's vars."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    variables = {**load(ROLE / "defaults" / "main.yml"), **load(ROLE / "vars" / "main.yml"), **overrides}
    return Templar(loader=DataLoader(), variables=variables).template("{{ _kea_lease_monitor_config }}")


def test_the_control_socket_reaches_the_monitor_with_either_writer():
    assert "kea-control-socket" not in rendered_config()
    # With the SQL writer the socket is for Kea's configuration verdicts (--kea-control-socket).
    assert rendered_config(kea_lease_monitor_kea_control_socket="/run/kea/kea4-ctrl-socket") == {
        "kea-control-socket": "/run/kea/kea4-ctrl-socket"
    }
    assert rendered_config(kea_lease_monitor_writer="kea-api", kea_lease_monitor_kea_control_socket="/run/kea/s") == {
        "writer": "kea-api",
        "kea-control-socket": "/run/kea/s",
    }

# -*- coding: utf-8 -*-
# Copyright: kea-lease-monitor maintainers
# Mozilla Public License 2.0 (see https://mozilla.org/MPL/2.0/)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: kea_lease_monitor
short_description: Machines discovered by kea-lease-monitor as an inventory
description:
  - Reads the discovery records of one or more kea-lease-monitor instances from C(GET /discovery) on their
    metrics listener (NDJSON, read-only) and adds one host per device.
  - Hosts are named after the MAC (C(0c-c4-7a-00-00-01)) by default. The hostname a DHCP client chose is
    untrusted and can collide with another machine's; I(hostname_source=hostname) uses it, sanitized, and
    falls back to the MAC-derived name for a hostname that is unusable or shared by several devices.
  - C(ansible_host) is the address the device leased and the monitor reserved.
  - The monitors of an HA pair serve overlapping records; a device is added once, from the record with the
    newest C(last_seen).
  - Every value read from a monitor is validated; a record with an invalid MAC, address, subnet id,
    reservation state or timestamp is skipped with a warning. Free text (the hostname and the Redfish version,
    UUID, vendor and product) longer than 255 characters or holding control characters becomes null, and is
    marked unsafe, so Jinja2 in it is never templated (C(ansible-inventory --list) shows such a value as a
    mapping with the one key C(__ansible_unsafe)).
  - The inventory source is a YAML file whose C(plugin) key is C(baremetal.kea_lease_monitor.kea_lease_monitor)
    and whose name ends in C(.yml) or C(.yaml).
version_added: "0.1.0"
author:
  - kea-lease-monitor maintainers
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin; it must be C(baremetal.kea_lease_monitor.kea_lease_monitor).
    type: str
    required: true
    choices: [baremetal.kea_lease_monitor.kea_lease_monitor]
  urls:
    description:
      - The monitors' metrics listeners, for example C(http://kea1.example.net:9548). C(/discovery) is
        appended unless the URL already ends in it.
      - Give both monitors of an HA pair; a device both know is added once.
    type: list
    elements: str
    required: true
  require_all_urls:
    description:
      - Fail when any URL cannot be read. By default a failing URL is a warning as long as one answers
        (one monitor of an HA pair may be down); when none answers the inventory fails.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each monitor to answer.
    type: int
    default: 10
  validate_certs:
    description: Verify the monitor's TLS certificate (HTTPS, for example through a reverse proxy).
    type: bool
    default: true
  ca_path:
    description: PEM file of the certificate authority that signed the monitor's (or proxy's) certificate.
    type: path
  client_cert:
    description: PEM client certificate, for a reverse proxy that authenticates its clients.
    type: path
  client_key:
    description: PEM key of I(client_cert), when the certificate file does not hold it.
    type: path
  use_proxy:
    description: Use the C(http_proxy)/C(https_proxy) environment variables.
    type: bool
    default: true
  max_records:
    description: Most records read from one monitor; more fails that URL (a bound on the controller's memory).
    type: int
    default: 200000
  hostname_source:
    description:
      - How hosts are named. C(mac) names them after the MAC (C(0c-c4-7a-00-00-01)).
      - C(hostname) uses the DHCP client's hostname, lowercased with every character outside
        C([a-z0-9.-]) replaced by C(-); a hostname that is empty, looks like an address or a MAC name, is
        C(localhost), C(all) or C(ungrouped), or is shared by several devices falls back to the MAC name.
    type: str
    default: mac
    choices: [mac, hostname]
  var_prefix:
    description: Prefix of the host variables this plugin sets (besides C(ansible_host)).
    type: str
    default: klm_
  default_groups:
    description:
      - Add the groups C(subnet_<id>), C(reservation_<state>) and C(redfish_vendor_<vendor>) (the vendor
        lowercased, other characters replaced by C(_)).
    type: bool
    default: true
notes:
  - The monitor serves C(/discovery) on C(--metrics-port) unless started with C(--no-discovery-endpoint). The
    endpoint has no authentication; restrict it with C(--metrics-host), a firewall or a reverse proxy (see the
    project's README).
"""

EXAMPLES = r"""
# kea.kea_lease_monitor.yml: both monitors of an HA pair, hosts named by MAC
plugin: baremetal.kea_lease_monitor.kea_lease_monitor
urls:
  - http://kea1.example.net:9548
  - http://kea2.example.net:9548

# Named by the client's hostname where it is usable and unique; groups of your own; cached for an hour
plugin: baremetal.kea_lease_monitor.kea_lease_monitor
urls: [https://kea1.example.net/klm]
ca_path: /etc/pki/kea-ca.pem
hostname_source: hostname
compose:
  bmc_url: "'https://' + ansible_host + '/redfish/v1'"
keyed_groups:
  # klm_subnet_id is a number: keyed groups need a string
  - key: klm_subnet_id | string
    prefix: dhcp_subnet
  - key: klm_redfish_product
    prefix: product
    default_value: unknown
groups:
  new_machines: klm_reservation == 'created'
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /var/tmp/klm-inventory-cache
cache_timeout: 3600
"""

import ipaddress
import json
import re
from datetime import datetime

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.six.moves.urllib.parse import urlparse
from ansible.module_utils.urls import open_url
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.display import Display
from ansible.utils.unsafe_proxy import wrap_var

display = Display()

MAX_LINE_BYTES = 64 * 1024
MAX_TEXT = 255
MAC = re.compile(r"^[0-9a-f]{2}(?::[0-9a-f]{2}){0,19}$")
MAC_NAME = re.compile(r"^[0-9a-f]{2}(?:-[0-9a-f]{2}){0,19}$")
CONTROL = re.compile(u"[\u0000-\u001f\u007f-\u009f\u2028\u2029]")
RESERVATIONS = ("created", "updated", "unchanged", "conflict", "foreign")
# The monitor says memfile or database; records of releases before 1.0 say file, read as memfile.
SOURCES = {"memfile": "memfile", "file": "memfile", "database": "database"}
REDFISH_STATUS = ("present", "absent", "unreachable")
REDFISH_TEXT = ("version", "uuid", "vendor", "product")
RESERVED_NAMES = ("localhost", "all", "ungrouped")


class InvalidRecord(ValueError):
    pass


def parse_time(value):
    """An ISO 8601 timestamp as an aware datetime; InvalidRecord otherwise."""
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidRecord("timestamp %r" % (value,))
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRecord("timestamp %r" % (value,))
    if stamp.tzinfo is None:
        raise InvalidRecord("timestamp %r has no time zone" % (value,))
    return stamp


def clean_text(value):
    """A short printable string, or None for anything else (untrusted device or client input)."""
    if not isinstance(value, str) or value == "" or len(value) > MAX_TEXT or CONTROL.search(value):
        return None
    return value


def validate(raw):
    """The fields this plugin uses, checked; InvalidRecord names the first bad one."""
    if not isinstance(raw, dict):
        raise InvalidRecord("not a JSON object")
    mac = raw.get("mac")
    if not isinstance(mac, str) or not MAC.match(mac):
        raise InvalidRecord("mac %r" % (mac,))
    try:
        ip = str(ipaddress.IPv4Address(to_text(raw.get("ip"))))
    except (ValueError, TypeError):
        raise InvalidRecord("ip %r" % (raw.get("ip"),))
    subnet = raw.get("subnet_id")
    if isinstance(subnet, bool) or not isinstance(subnet, int) or not 0 <= subnet <= 0xFFFFFFFF:
        raise InvalidRecord("subnet_id %r" % (subnet,))
    if raw.get("reservation") not in RESERVATIONS:
        raise InvalidRecord("reservation %r" % (raw.get("reservation"),))
    parse_time(raw.get("last_seen"))
    host_id = raw.get("host_id")
    record = {
        "mac": mac,
        "ip": ip,
        "subnet_id": subnet,
        "reservation": raw["reservation"],
        "last_seen": raw["last_seen"],
        "first_seen": raw.get("first_seen") if _is_time(raw.get("first_seen")) else None,
        "hostname": clean_text(raw.get("hostname")),
        "source": SOURCES.get(raw.get("source")) if isinstance(raw.get("source"), str) else None,
        "host_id": host_id if isinstance(host_id, int) and not isinstance(host_id, bool) and host_id >= 0 else None,
    }
    redfish = raw.get("redfish")
    if isinstance(redfish, dict):
        status = redfish.get("status")
        record["redfish"] = dict(
            [("status", status if status in REDFISH_STATUS else None)]
            + [(k, clean_text(redfish.get(k))) for k in REDFISH_TEXT]
            + [("probed_at", redfish.get("probed_at") if _is_time(redfish.get("probed_at")) else None)]
        )
    return record


def _is_time(value):
    try:
        parse_time(value)
        return True
    except InvalidRecord:
        return False


def mac_name(mac):
    return mac.replace(":", "-")


def hostname_candidate(hostname):
    """The client's hostname as a safe inventory name, or None when it cannot be one."""
    if hostname is None:
        return None
    name = re.sub(r"[^a-z0-9.-]+", "-", hostname.strip().lower())
    labels = [label.strip("-") for label in name.split(".")]
    labels = [label[:63] for label in labels if label]
    name = ".".join(labels)[:253].strip(".-")
    if not name or name in RESERVED_NAMES or MAC_NAME.match(name) or not re.search(r"[a-z]", name):
        return None
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        return name


def vendor_group(vendor):
    bare = re.sub(r"[^a-z0-9]+", "_", vendor.lower()).strip("_")[:64]
    return "redfish_vendor_" + bare if bare else None


def newest(records):
    """One record per MAC: the one with the newest last_seen (the first of equals)."""
    by_mac = {}
    for record in records:
        kept = by_mac.get(record["mac"])
        if kept is None or parse_time(record["last_seen"]) > parse_time(kept["last_seen"]):
            by_mac[record["mac"]] = record
    return [by_mac[mac] for mac in sorted(by_mac)]


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "baremetal.kea_lease_monitor.kea_lease_monitor"

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith((".yml", ".yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        urls = self.get_option("urls")
        if not urls:
            raise AnsibleParserError("%s: urls: give at least one monitor URL" % path)

        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        records = None
        if use_cache:
            try:
                records = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if records is None:
            records = newest(self._fetch_all([self._endpoint(u) for u in urls]))
        if update_cache:
            self._cache[cache_key] = records
        self._populate(records)

    @staticmethod
    def _endpoint(url):
        if not isinstance(url, str):
            raise AnsibleParserError("urls: %r is not a string" % (url,))
        parts = urlparse(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AnsibleParserError("urls: %r is not an http:// or https:// URL" % (url,))
        if parts.query or parts.fragment:
            raise AnsibleParserError("urls: %r: no query or fragment, please" % (url,))
        return url if parts.path.endswith("/discovery") else url.rstrip("/") + "/discovery"

    def _fetch_all(self, urls):
        records, failures = [], []
        for url in urls:
            try:
                records.extend(self._fetch(url))
            except AnsibleError as err:
                failures.append("%s: %s" % (url, to_native(err)))
        if failures and (self.get_option("require_all_urls") or len(failures) == len(urls)):
            raise AnsibleParserError("kea_lease_monitor: " + "; ".join(failures))
        for failure in failures:
            display.warning("kea_lease_monitor: skipped %s" % failure)
        return records

    def _fetch(self, url):
        try:
            response = open_url(
                url,
                method="GET",
                headers={"Accept": "application/x-ndjson"},
                timeout=self.get_option("timeout"),
                validate_certs=self.get_option("validate_certs"),
                ca_path=self.get_option("ca_path"),
                client_cert=self.get_option("client_cert"),
                client_key=self.get_option("client_key"),
                use_proxy=self.get_option("use_proxy"),
                follow_redirects="none",
                http_agent="ansible-kea_lease_monitor-inventory",
            )
        except Exception as err:
            raise AnsibleError("cannot read: %s" % to_native(err))
        kind = response.headers.get("Content-Type", "")
        if not kind.startswith("application/x-ndjson"):
            raise AnsibleError("answered %r, not application/x-ndjson (is this a kea-lease-monitor?)" % kind)
        records, skipped, first_reason, limit = [], 0, None, self.get_option("max_records")
        try:
            while True:
                line = response.readline(MAX_LINE_BYTES + 1)
                if not line:
                    break
                if len(line) > MAX_LINE_BYTES:
                    raise AnsibleError("a line longer than %d bytes" % MAX_LINE_BYTES)
                if not line.strip():
                    continue
                try:
                    records.append(validate(json.loads(to_text(line, errors="surrogate_or_strict"))))
                except (InvalidRecord, ValueError, UnicodeError) as err:
                    skipped += 1
                    first_reason = first_reason or to_native(err)[:200]
                if len(records) > limit:
                    raise AnsibleError("more than max_records=%d records" % limit)
        except AnsibleError:
            raise
        except Exception as err:
            # A connection cut mid-stream: the list is incomplete, so none of it is used.
            raise AnsibleError("response cut short: %s" % to_native(err))
        if skipped:
            display.warning("kea_lease_monitor: %s: skipped %d invalid record(s), first: %s" % (url, skipped, first_reason))
        return records

    def _names(self, records):
        """Inventory name per MAC: the MAC's, or the sanitized hostname where usable and unique."""
        names = dict((r["mac"], mac_name(r["mac"])) for r in records)
        if self.get_option("hostname_source") != "hostname":
            return names
        wanted = dict((r["mac"], hostname_candidate(r["hostname"])) for r in records)
        count = {}
        for name in wanted.values():
            count[name] = count.get(name, 0) + 1
        for mac, name in wanted.items():
            if name is None:
                continue
            if count[name] > 1:
                display.warning("kea_lease_monitor: hostname %r is used by %d devices; %s keeps its MAC name" % (name, count[name], mac))
                continue
            names[mac] = name
        return names

    def _populate(self, records):
        prefix = self.get_option("var_prefix")
        strict = self.get_option("strict")
        names = self._names(records)
        free_text = [prefix + "hostname"] + [prefix + "redfish_" + k for k in REDFISH_TEXT]
        for record in records:
            host = self.inventory.add_host(names[record["mac"]])
            values = {"ansible_host": record["ip"]}
            for key in ("mac", "ip", "subnet_id", "reservation", "hostname", "first_seen", "last_seen", "source", "host_id"):
                values[prefix + key] = record[key]
            redfish = record.get("redfish")
            if redfish:
                for key, value in redfish.items():
                    values[prefix + "redfish_" + key] = value
            for key, value in values.items():
                # Free text from the client or the device stays unsafe: never templated. The other values
                # were checked against strict patterns above.
                self.inventory.set_variable(host, key, wrap_var(value) if key in free_text else value)
            if self.get_option("default_groups"):
                groups = ["subnet_%d" % record["subnet_id"], "reservation_" + record["reservation"]]
                if redfish and redfish.get("vendor") and vendor_group(redfish["vendor"]):
                    groups.append(vendor_group(redfish["vendor"]))
                for group in groups:
                    self.inventory.add_child(self.inventory.add_group(group), host)
            hostvars = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option("compose"), hostvars, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, host, strict=strict)

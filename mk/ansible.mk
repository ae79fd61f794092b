# Ansible bundle: the role carries the executable, a collection tarball, lint, a booted-systemd test,
# deploy and rollback.
#   make deploy INVENTORY=path/to/hosts.yml [ANSIBLE_ARGS='--check --diff -e kea_db_enable_notify=true']
INVENTORY ?= ansible/inventory/hosts.yml
ANSIBLE_ARGS ?=
ANSIBLE_ENV := ANSIBLE_CONFIG=$(CURDIR)/ansible/ansible.cfg
ANSIBLE_LINT_TARGETS := roles/kea_lease_monitor playbooks/kea_deploy.yml playbooks/kea_rollback.yml
ROLE_BIN := roles/kea_lease_monitor/files/kea-lease-monitor
COLLECTION_VERSION = $(shell sed -n 's/^version: *//p' galaxy.yml)
COLLECTION := baremetal-kea_lease_monitor-$(COLLECTION_VERSION).tar.gz

.PHONY: lint-ansible test-ansible deploy rollback collection clean-ansible

# `make build` also places the executable in the role, so the role (and a collection built from it)
# deploys without the repository's dist/ beside it. Git-ignored.
build: $(ROLE_BIN)
$(ROLE_BIN): $(BIN)
	install -D -m 0755 $< $@

collection: build ## the Ansible collection tarball baremetal-kea_lease_monitor-<version>.tar.gz (role, playbooks, executable)
	ansible-galaxy collection build --force --output-path . .

lint-ansible: ## ansible-lint (production profile) and --syntax-check of both playbooks
	$(ANSIBLE_ENV) ansible-lint -c ansible/.ansible-lint --profile production $(ANSIBLE_LINT_TARGETS)
	$(ANSIBLE_ENV) ansible-playbook -i ansible/inventory/hosts.yml --syntax-check playbooks/kea_deploy.yml playbooks/kea_rollback.yml

test-ansible: build ## lint, collection, then deploy/toggle/rollback on booted Debian 12 and 13 systemd-nspawn containers (root)
	test/ansible/run.sh
	test/ansible/inventory.sh

deploy: build ## ansible-playbook playbooks/kea_deploy.yml -i $(INVENTORY)
	$(ANSIBLE_ENV) ansible-playbook -i $(INVENTORY) playbooks/kea_deploy.yml $(ANSIBLE_ARGS)

rollback: ## ansible-playbook playbooks/kea_rollback.yml -i $(INVENTORY)
	$(ANSIBLE_ENV) ansible-playbook -i $(INVENTORY) playbooks/kea_rollback.yml $(ANSIBLE_ARGS)

clean: clean-ansible
clean-ansible:
	rm -f $(ROLE_BIN) baremetal-kea_lease_monitor-*.tar.gz

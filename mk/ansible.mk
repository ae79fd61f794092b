# Ansible bundle: the role carries the executable, a collection tarball, lint, a booted-systemd test,
# deploy and rollback.
#   make deploy INVENTORY=path/to/hosts.yml [ANSIBLE_ARGS='--check --diff -e kea_db_enable_notify=true']
INVENTORY ?= ansible/inventory/hosts.yml
ANSIBLE_ARGS ?=
ROLE_BIN := roles/kea_lease_monitor/files/kea-lease-monitor
COLLECTION_VERSION = $(shell sed -n 's/^version: *//p' collection/galaxy.yml)
COLLECTION := baremetal-kea_lease_monitor-$(COLLECTION_VERSION).tar.gz

.PHONY: lint-ansible test-ansible deploy rollback collection clean-ansible

# `make build` also places the executable in the role, so the role (and a collection built from it)
# deploys without the repository's dist/ beside it. Git-ignored.
build: $(ROLE_BIN)
$(ROLE_BIN): $(BIN)
	install -D -m 0755 $< $@

# Not `ansible-galaxy collection build .`: galaxy.yml lives in collection/ so that a plain build fails instead
# of packing the role without its executable; ansible/build-collection.sh stages and checks it.
collection: build ## the Ansible collection tarball baremetal-kea_lease_monitor-<version>.tar.gz (role, playbooks, executable)
	ansible/build-collection.sh .

lint-ansible: ## ansible-lint --offline --profile production over the whole repository, and --syntax-check of both playbooks as typed
	ansible-lint --offline --profile production
	env -u ANSIBLE_CONFIG ansible-playbook -i ansible/inventory/hosts.yml --syntax-check playbooks/kea_deploy.yml playbooks/kea_rollback.yml

test-ansible: build ## lint, collection, then deploy/toggle/rollback on booted Debian 12 and 13 systemd-nspawn containers (root)
	test/ansible/run.sh
	test/ansible/inventory.sh

deploy: build ## ansible-playbook -i $(INVENTORY) playbooks/kea_deploy.yml
	ansible-playbook -i $(INVENTORY) playbooks/kea_deploy.yml $(ANSIBLE_ARGS)

rollback: ## ansible-playbook -i $(INVENTORY) playbooks/kea_rollback.yml
	ansible-playbook -i $(INVENTORY) playbooks/kea_rollback.yml $(ANSIBLE_ARGS)

clean: clean-ansible
clean-ansible:
	rm -f $(ROLE_BIN) baremetal-kea_lease_monitor-*.tar.gz

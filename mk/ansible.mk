# Ansible bundle: lint, a booted-systemd test, deploy and rollback.
#   make deploy INVENTORY=path/to/hosts.yml [ANSIBLE_ARGS='--check --diff -e kea_db_enable_notify=true']
INVENTORY ?= ansible/inventory/hosts.yml
ANSIBLE_ARGS ?=
ANSIBLE_ENV := ANSIBLE_CONFIG=$(CURDIR)/ansible/ansible.cfg
ANSIBLE_LINT_TARGETS := roles/kea_lease_monitor playbooks/kea_deploy.yml playbooks/kea_rollback.yml

.PHONY: lint-ansible test-ansible deploy rollback

lint-ansible: ## ansible-lint (production profile) and --syntax-check of both playbooks
	$(ANSIBLE_ENV) ansible-lint -c ansible/.ansible-lint --profile production $(ANSIBLE_LINT_TARGETS)
	$(ANSIBLE_ENV) ansible-playbook -i ansible/inventory/hosts.yml --syntax-check playbooks/kea_deploy.yml playbooks/kea_rollback.yml

test-ansible: build ## lint, then deploy/toggle/rollback against a booted Debian 12 systemd-nspawn container (root)
	test/ansible/run.sh

deploy: build ## ansible-playbook playbooks/kea_deploy.yml -i $(INVENTORY)
	$(ANSIBLE_ENV) ansible-playbook -i $(INVENTORY) playbooks/kea_deploy.yml $(ANSIBLE_ARGS)

rollback: ## ansible-playbook playbooks/kea_rollback.yml -i $(INVENTORY)
	$(ANSIBLE_ENV) ansible-playbook -i $(INVENTORY) playbooks/kea_rollback.yml $(ANSIBLE_ARGS)

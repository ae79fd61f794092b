# Lint: typescript-eslint (type-aware) and Prettier's check, one style for src, test, bench and scripts.
LINT_DIRS := src test bench scripts

.PHONY: lint format

lint: deps ## eslint (typescript-eslint, type-aware) and prettier --check over src, test, bench, scripts
	npx eslint $(LINT_DIRS)
	npx prettier --check $(LINT_DIRS)

format: deps ## prettier --write over src, test, bench, scripts (rewrites files)
	npx prettier --write $(LINT_DIRS)

# The two commands of README.md. Both bootstrap a fresh machine first (idempotent).
.PHONY: demo test bootstrap

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/python -m devenv.demo

test: bootstrap
	.venv/bin/pytest

# The two commands of README.md. Both bootstrap a fresh machine first (idempotent).
.PHONY: demo test bootstrap

bootstrap:
	@scripts/bootstrap.sh

# make demo ARGS=--keep-running   (make takes no --options of its own for a target)
demo: bootstrap
	.venv/bin/python -m devenv.demo $(ARGS)

test: bootstrap
	.venv/bin/pytest

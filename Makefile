# `make dev`, `make demo` and `make bench` are not written yet (see README, "Status").
.PHONY: test build lint clean

test:         ## every test of the workspace against DynamoDB Local, and cfn-lint
	scripts/test.sh

build:        ## release Lambda binaries with cargo lambda
	scripts/ensure-tools.sh lambda
	PATH="$(CURDIR)/.tools/venv/bin:$$PATH" cargo lambda build --release

lint:
	scripts/ensure-tools.sh lint
	.tools/venv/bin/cfn-lint template.yaml

clean:
	scripts/dynamodb-local.sh stop
	rm -rf .dev

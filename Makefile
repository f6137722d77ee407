# The two commands: `make dev` (the whole flow locally) and `make test`.
.PHONY: dev demo test bench build lint clean

dev:          ## DynamoDB Local + WeChat simulator + every function behind cargo lambda watch
	scripts/dev.sh

demo:         ## the whole story against the local stack, step by step
	scripts/demo.sh

test:         ## every test of the workspace against DynamoDB Local, and cfn-lint
	scripts/test.sh

bench:        ## cold start, latency, RSS, binary size, dispatch throughput
	scripts/bench.sh

build:        ## release Lambda binaries with cargo lambda
	scripts/ensure-tools.sh lambda
	PATH="$(CURDIR)/.tools/venv/bin:$$PATH" cargo lambda build --release

lint:
	scripts/ensure-tools.sh lint
	.tools/venv/bin/cfn-lint template.yaml

clean:
	scripts/dynamodb-local.sh stop
	rm -rf .dev

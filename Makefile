.PHONY: dev demo test build bench lint clean

dev:          ## the whole backend locally: DynamoDB Local, simulator, every function (Ctrl-C stops)
	scripts/dev.sh

demo:         ## the whole story against the local stack (starts one if none runs)
	scripts/demo.sh

test:         ## fmt and clippy, cfn-lint, every test of the workspace against DynamoDB Local
	scripts/test.sh

build:        ## release Lambda binaries with cargo lambda
	scripts/ensure-tools.sh lambda
	PATH="$(CURDIR)/.tools/venv/bin:$$PATH" cargo lambda build --release

bench:        ## performance budget: cold starts, latency, memory, sizes, dispatch throughput (prints a table)
	scripts/bench.sh

lint:         ## cargo fmt --check, clippy -D warnings, cfn-lint and sam validate --lint on template.yaml (all offline)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	scripts/ensure-tools.sh lint sam
	.tools/venv/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 .tools/venv/bin/sam validate --lint --region us-east-1

clean:
	scripts/dev.sh stop
	rm -rf .dev

.PHONY: dev demo test build lint clean

dev:          ## the whole backend locally: DynamoDB Local, simulator, every function (Ctrl-C stops)
	scripts/dev.sh

demo:         ## the whole story against the local stack (starts one if none runs)
	scripts/demo.sh

test:         ## every test of the workspace against DynamoDB Local, and cfn-lint
	scripts/test.sh

build:        ## release Lambda binaries with cargo lambda
	scripts/ensure-tools.sh lambda
	PATH="$(CURDIR)/.tools/venv/bin:$$PATH" cargo lambda build --release

lint:
	scripts/ensure-tools.sh lint
	.tools/venv/bin/cfn-lint template.yaml

clean:
	scripts/dev.sh stop
	rm -rf .dev

# Everything a developer or CI runs goes through these targets.
GO       ?= go
TOOLS    := $(CURDIR)/.tools
OCB_VERSION := v0.160.0
OCB      := $(TOOLS)/builder

.PHONY: all build run test bench lint generate clean tools

all: lint test

# ocb is pinned and installed into the repo so every machine builds with the same one.
$(OCB):
	GOBIN=$(TOOLS) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

tools: $(OCB)

test:
	$(GO) test ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

generate:
	cd receiver/copilotstudioreceiver && $(GO) tool mdatagen metadata.yaml
	cd processor/activitypairprocessor && $(GO) tool mdatagen metadata.yaml

clean:
	rm -rf _build

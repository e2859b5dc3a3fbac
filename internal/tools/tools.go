//go:build tools

// Package tools pins test and build dependencies that no package imports yet.
package tools

import (
	_ "github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "go.opentelemetry.io/collector/component"
	_ "go.opentelemetry.io/collector/component/componenttest"
	_ "go.opentelemetry.io/collector/config/confighttp"
	_ "go.opentelemetry.io/collector/config/configopaque"
	_ "go.opentelemetry.io/collector/confmap/confmaptest"
	_ "go.opentelemetry.io/collector/consumer/consumertest"
	_ "go.opentelemetry.io/collector/extension/xextension/storage"
	_ "go.opentelemetry.io/collector/pdata/plog"
	_ "go.opentelemetry.io/collector/processor/processorhelper"
	_ "go.opentelemetry.io/collector/processor/processortest"
	_ "go.opentelemetry.io/collector/receiver/receiverhelper"
	_ "go.opentelemetry.io/collector/receiver/receivertest"
)

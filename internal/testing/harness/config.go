package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.uber.org/zap"
)

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot is the directory of this module's go.mod.
func RepoRoot() (string, error) {
	rootOnce.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			rootErr = errors.New("harness: cannot locate the source tree")
			return
		}
		dir := filepath.Dir(file)
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = errors.New("harness: no go.mod above " + filepath.Dir(file))
				return
			}
			dir = parent
		}
	})
	return rootDir, rootErr
}

// CollectorConfigPath is the collector-config.yaml users get, at the repo root.
func CollectorConfigPath() string {
	root, err := RepoRoot()
	if err != nil {
		return "collector-config.yaml"
	}
	return filepath.Join(root, "collector-config.yaml")
}

// LoadCollectorConfig reads a collector config the way the collector does:
// file and env providers, ${env:NAME:-default} expanded from this process's
// environment, $$ unescaped; later files merged over earlier ones, as with
// repeated --config flags.
func LoadCollectorConfig(paths ...string) (*confmap.Conf, error) {
	uris := make([]string, len(paths))
	for i, p := range paths {
		uris[i] = "file:" + p
	}
	resolver, err := confmap.NewResolver(confmap.ResolverSettings{
		URIs:              uris,
		ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
		DefaultScheme:     "env",
		ProviderSettings:  confmap.ProviderSettings{Logger: zap.NewNop()},
		ConverterSettings: confmap.ConverterSettings{Logger: zap.NewNop()},
	})
	if err != nil {
		return nil, err
	}
	return resolver.Resolve(context.Background())
}

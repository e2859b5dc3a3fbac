package harness

import (
	"path/filepath"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
)

// TranscriptsOverlayPath is collector-config.transcripts.yaml, which adds
// the Dataverse transcripts receiver to collector-config.yaml's pipeline.
func TranscriptsOverlayPath() string {
	root, err := RepoRoot()
	if err != nil {
		return "collector-config.transcripts.yaml"
	}
	return filepath.Join(root, "collector-config.transcripts.yaml")
}

// StartDataverse starts the Dataverse stand-in of the environment
// environmentID holding bots, on the Azure stand-ins' CA (so AZURE_CA_FILE
// covers it too), accepting only the tokens the Entra ID stand-in issued
// for its own scope ({url}/.default), as an environment does.
func (a *Azure) StartDataverse(environmentID string, bots ...fakedataverse.Bot) *fakedataverse.Server {
	var dv *fakedataverse.Server
	dv = fakedataverse.New(fakedataverse.Options{
		TokenValidator: func(token string) bool {
			scope, ok := a.Entra.Scope(token)
			return ok && scope == dv.URL+"/.default"
		},
		EnvironmentID: environmentID, TLS: a.Entra.Bundle().ServerTLSConfig(),
	}, bots...)
	return dv
}

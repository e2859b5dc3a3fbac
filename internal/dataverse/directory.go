package dataverse

import (
	"strings"
	"sync"
)

// Directory is the cached list of agents, safe for concurrent lookups while a
// background refresh replaces it.
type Directory struct {
	mu       sync.RWMutex
	byID     map[string]Agent
	bySchema map[string]Agent
	byName   map[string]Agent
	loaded   bool
}

// Replace swaps in a freshly read list of agents.
func (d *Directory) Replace(agents []Agent) {
	byID := make(map[string]Agent, len(agents))
	bySchema := make(map[string]Agent, len(agents))
	byName := make(map[string]Agent, len(agents))
	ambiguous := map[string]bool{}
	for _, a := range agents {
		byID[strings.ToLower(a.ID)] = a
		if a.SchemaName != "" {
			bySchema[strings.ToLower(a.SchemaName)] = a
		}
		name := strings.ToLower(strings.TrimSpace(a.Name))
		if name == "" {
			continue
		}
		if _, dup := byName[name]; dup {
			ambiguous[name] = true
		}
		byName[name] = a
	}
	// Two agents with one display name: telemetry cannot tell them apart by
	// name, and a wrong match is worse than none.
	for name := range ambiguous {
		delete(byName, name)
	}
	d.mu.Lock()
	d.byID, d.bySchema, d.byName, d.loaded = byID, bySchema, byName, true
	d.mu.Unlock()
}

// Loaded reports whether the directory has been filled at least once.
func (d *Directory) Loaded() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.loaded
}

// Lookup finds the agent a telemetry row belongs to: by schema name (the
// prefix of a fully qualified TopicName, or the agent name when it is one),
// else by display name (cloud_RoleInstance), ignoring case.
func (d *Directory) Lookup(agentName, topicName string) (Agent, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if schemaName := SchemaNameOfTopic(topicName); schemaName != "" {
		if a, ok := d.bySchema[strings.ToLower(schemaName)]; ok {
			return a, true
		}
	}
	key := strings.ToLower(strings.TrimSpace(agentName))
	if a, ok := d.bySchema[key]; ok {
		return a, true
	}
	a, ok := d.byName[key]
	return a, ok
}

// ByID finds an agent by its bot id (what a transcript's lookup column holds).
func (d *Directory) ByID(id string) (Agent, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	a, ok := d.byID[strings.ToLower(id)]
	return a, ok
}

// BySchemaName finds an agent by its schema name, ignoring case.
func (d *Directory) BySchemaName(name string) (Agent, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	a, ok := d.bySchema[strings.ToLower(name)]
	return a, ok
}

// SchemaNameOfTopic returns "cr44e_hrAgent" for "cr44e_hrAgent.topic.Greeting",
// and "" for a topic name that is not fully qualified.
func SchemaNameOfTopic(topicName string) string {
	i := strings.Index(topicName, ".topic.")
	if i <= 0 {
		return ""
	}
	return topicName[:i]
}

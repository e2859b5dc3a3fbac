//go:build !linux

package harness

import (
	"os/exec"
	"time"
)

func setChildAttrs(*exec.Cmd) {}

// SelfCPUTime is not measured here: 0.
func SelfCPUTime() time.Duration { return 0 }

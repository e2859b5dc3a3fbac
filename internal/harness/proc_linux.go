package harness

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes the kernel kill the collector if the test process dies
// first, so no orphan keeps ports and storage busy.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

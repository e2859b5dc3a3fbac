package harness

import (
	"os/exec"
	"syscall"
)

// setChildAttrs runs the collector in its own process group, so Ctrl-C in a
// terminal reaches only the parent, which then stops it in order; and makes
// the kernel kill it if the parent dies first, so no orphan keeps ports and
// storage busy.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

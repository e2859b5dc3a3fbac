package harness

import (
	"os/exec"
	"syscall"
	"time"
)

// setChildAttrs runs the collector in its own process group, so Ctrl-C in a
// terminal reaches only the parent, which then stops it in order; and makes
// the kernel kill it if the parent dies first, so no orphan keeps ports and
// storage busy.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// SelfCPUTime is the CPU time this process has used so far, user plus
// system, GC included: benchmarks report it per row because, on a shared
// machine, it moves far less than wall time.
func SelfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

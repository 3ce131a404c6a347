package observe

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
)

// requireLinux says, off Linux, that observing needs it: network namespaces, sock_diag and
// /proc are Linux's. The judge, the reports and the generators build and run everywhere.
func requireLinux(goos string, procRoot string) error {
	if goos == "linux" || (procRoot != "" && filepath.Clean(procRoot) != "/proc") {
		return nil // a fixture /proc tree is readable anywhere
	}
	return fmt.Errorf("observing listening sockets needs Linux (this is %s): %w", goos, errors.ErrUnsupported)
}

// goos is the OS bindguard runs on.
const goos = runtime.GOOS

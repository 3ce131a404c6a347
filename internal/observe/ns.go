package observe

import (
	"fmt"
	"os"

	"github.com/bindguard/bindguard/internal/proc"
)

// openNS opens a namespace for netlink: 0 (no switch) for the current one.
func openNS(ns proc.Namespace) (int, func(), error) {
	if ns.Current {
		return 0, func() {}, nil
	}
	f, err := os.Open(ns.Path) // #nosec G304 -- a namespace file found under /proc or /run/netns
	if err != nil {
		return 0, nil, fmt.Errorf("netns %s: %w", ns.Label, err)
	}
	return int(f.Fd()), func() { _ = f.Close() }, nil
}

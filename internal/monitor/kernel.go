package monitor

import "github.com/bindguard/bindguard/internal/kernel"

// KernelEvents is Config.OpenEvents for the real kernel: kernel.OpenWatcher with opts (its
// errors wrap kernel.ErrUnavailable, the fallback's reason).
func KernelEvents(opts kernel.WatchOptions) func() (EventSource, error) {
	return func() (EventSource, error) {
		w, err := kernel.OpenWatcher(opts)
		if err != nil {
			return nil, err
		}
		return w, nil
	}
}

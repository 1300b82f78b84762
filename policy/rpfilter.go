package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// setRPFilter turns on strict reverse-path filtering on every segment
// interface: a packet whose source address would not be routed back out of
// the interface it came in on (a pupil claiming a staff address, anything
// claiming an uplink address) is dropped by the kernel before any rule.
// It writes /proc/sys directly, so it runs only when the enforcer programs
// its own network namespace (the daemon); an enforcer aimed at another
// namespace (tests) leaves it to that namespace's owner.
func (e *Enforcer) setRPFilter() error {
	if e.netnsFd != 0 {
		return nil
	}
	var errs error
	for _, s := range e.net.Segments {
		p := filepath.Join("/proc/sys/net/ipv4/conf", s.Interface, "rp_filter")
		if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
			errs = errors.Join(errs, fmt.Errorf("policy: rp_filter on %s: %w", s.Interface, err))
		}
	}
	return errs
}

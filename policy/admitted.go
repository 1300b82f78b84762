package policy

import (
	"net"
	"net/netip"
	"strings"
)

// Admitted reports whether a portal admission covers ip now: with mac, only
// the admission of that exact pair; without (a caller that cannot name the
// device), any admission of the address. The DNS guard asks it before
// resolving a visitor's lookups.
func (e *Enforcer) Admitted(ip netip.Addr, mac net.HardwareAddr) bool {
	ik, err := ipKey(ip.Unmap())
	if err != nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if mac != nil {
		k, err := admittedKey(Device{MAC: mac, IP: ip.Unmap()})
		if err != nil {
			return false
		}
		m, ok := e.members[SetAdmitted][k]
		return ok && (m.until.IsZero() || now.Before(m.until))
	}
	for k, m := range e.members[SetAdmitted] {
		if strings.HasSuffix(k, ik) && (m.until.IsZero() || now.Before(m.until)) {
			return true
		}
	}
	return false
}

package dhcp

import (
	"context"
	"net"
	"strings"
)

// ReleaseMAC ends every bound lease of mac on every segment, as if the
// client had sent DHCPRELEASE, so a revoked device's address goes back to
// the pool at once (package people calls it when a person's access ends;
// the device is blocked, so it gets no new lease). The change is committed
// with the server's other lease writes.
func (s *Server) ReleaseMAC(ctx context.Context, mac net.HardwareAddr) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m := strings.ToLower(mac.String())
	now := s.now()
	var released []Lease
	for _, seg := range s.segs {
		for _, l := range seg.pool.leases() {
			if l.State != StateBound || !strings.EqualFold(l.MAC.String(), m) {
				continue
			}
			if rl, ok := seg.pool.release(l.IP, l.MAC.String(), now); ok {
				released = append(released, rl)
			}
		}
	}
	if len(released) == 0 {
		return nil
	}
	s.commit.record(released, nil)
	for _, l := range released {
		s.metrics.inc(&s.metrics.Releases)
		s.released(l)
	}
	return nil
}

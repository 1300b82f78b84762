package policy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"
)

// Conntrack deletes connection-tracking entries over netlink.
type Conntrack struct {
	mu sync.Mutex
	c  *conntrack.Conn
}

// DialConntrack opens a conntrack netlink socket in the namespace of netnsFd
// (the caller's when zero).
func DialConntrack(netnsFd int) (*Conntrack, error) {
	c, err := conntrack.Dial(&netlink.Config{NetNS: netnsFd})
	if err != nil {
		return nil, fmt.Errorf("policy: open conntrack netlink: %w", err)
	}
	return &Conntrack{c: c}, nil
}

// KillFlows deletes every entry whose original source or destination is ip,
// which covers both a client's own connections and connections to it; it
// returns how many were deleted.
func (k *Conntrack) KillFlows(ctx context.Context, ip netip.Addr) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	flows, err := k.c.Dump(nil)
	if err != nil {
		return 0, fmt.Errorf("dump conntrack: %w", err)
	}
	n := 0
	for _, f := range flows {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		t := f.TupleOrig.IP
		if t.SourceAddress != ip && t.DestinationAddress != ip {
			continue
		}
		if err := k.c.Delete(f); err != nil {
			// The entry may have ended between dump and delete.
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return n, fmt.Errorf("delete conntrack entry %v: %w", t, err)
		}
		n++
	}
	return n, nil
}

// Close closes the netlink socket.
func (k *Conntrack) Close() error { return k.c.Close() }

package captive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// NeighbourTable finds a client's MAC in the kernel's IPv4 neighbour (ARP)
// table. A client that just sent us a TCP segment has a fresh entry there.
//
// Each lookup asks the kernel for the one entry (the route to the address
// names its interface), so its cost does not grow with the number of
// clients: with thousands of visitors, listing the whole table for every
// request was most of the portal's work. Kernels older than 5.0, which
// cannot get a single entry, are asked for the whole table instead.
type NeighbourTable struct {
	// NetNS, when non-zero, is an open network namespace file (the
	// router's, as for policy.Options.NetNSFd) to look in; zero looks in
	// the caller's namespace.
	NetNS int

	// conns keeps a few netlink sockets open between lookups
	// (NewNeighbourTable). Without it each lookup opens its own, which
	// was a sixth of the portal's CPU time at a rush: every probe and
	// sign-in looks its client up.
	conns chan *netlink.Conn
	// routes remembers which interface an address is on
	// (NewNeighbourTable), which saves the route lookup, the other half of
	// a lookup's netlink round trips.
	routes *routeCache
}

// routeCache maps client addresses to the interface the kernel routes
// them through, for routeFor. It is bounded (clients choose their
// addresses) and its entries are short-lived; one found wrong (the entry
// is not on that interface) is looked up again.
type routeCache struct {
	mu sync.Mutex
	m  map[netip.Addr]routeEntry
}

type routeEntry struct {
	ifindex uint32
	at      time.Time
}

const (
	routeCacheMax = 4096
	routeCacheTTL = 30 * time.Second
)

// routeFor returns ip's interface, from the cache when it is fresh.
func (n NeighbourTable) routeFor(c *netlink.Conn, ip netip.Addr) (ifindex uint32, cached bool, err error) {
	now := time.Now()
	if r := n.routes; r != nil {
		r.mu.Lock()
		e, ok := r.m[ip]
		r.mu.Unlock()
		if ok && now.Sub(e.at) < routeCacheTTL {
			return e.ifindex, true, nil
		}
	}
	ifindex, err = routeInterface(c, ip)
	if err != nil || n.routes == nil {
		return ifindex, false, err
	}
	r := n.routes
	r.mu.Lock()
	if len(r.m) >= routeCacheMax {
		clear(r.m)
	}
	r.m[ip] = routeEntry{ifindex: ifindex, at: now}
	r.mu.Unlock()
	return ifindex, false, nil
}

func (n NeighbourTable) forgetRoute(ip netip.Addr) {
	if r := n.routes; r != nil {
		r.mu.Lock()
		delete(r.m, ip)
		r.mu.Unlock()
	}
}

// neighbourConns is how many idle netlink sockets a NeighbourTable keeps.
const neighbourConns = 8

// NewNeighbourTable returns a NeighbourTable for the namespace of netNS
// (zero: the caller's) that reuses its netlink sockets; Close releases
// them.
func NewNeighbourTable(netNS int) NeighbourTable {
	return NeighbourTable{NetNS: netNS, conns: make(chan *netlink.Conn, neighbourConns),
		routes: &routeCache{m: map[netip.Addr]routeEntry{}}}
}

// Close closes the idle sockets of a NewNeighbourTable. Lookups after it
// open sockets of their own again, and close them.
func (n NeighbourTable) Close() error {
	for {
		select {
		case c := <-n.conns:
			c.Close()
		default:
			return nil
		}
	}
}

// conn returns an idle socket, or a new one.
func (n NeighbourTable) conn() (*netlink.Conn, error) {
	select {
	case c := <-n.conns:
		return c, nil
	default:
	}
	return netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: n.NetNS})
}

// release keeps c for the next lookup when it served this one without an
// error (a socket that failed may hold a stray reply), or closes it.
func (n NeighbourTable) release(c *netlink.Conn, ok bool) {
	if ok && n.conns != nil {
		select {
		case n.conns <- c:
			return
		default:
		}
	}
	c.Close()
}

// Netlink constants not in x/sys/unix.
const (
	ndaDst    = 1 // NDA_DST
	ndaLLAddr = 2 // NDA_LLADDR
	rtaDst    = 1 // RTA_DST
	rtaOIF    = 4 // RTA_OIF

	ndmsgLen = 12 // struct ndmsg
	rtmsgLen = 12 // struct rtmsg
)

// MACFor returns the link-layer address of ip from an entry that is usable
// (not failed or incomplete).
func (n NeighbourTable) MACFor(ip netip.Addr) (net.HardwareAddr, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("captive: neighbour of %v: only IPv4 is looked up", ip)
	}
	c, err := n.conn()
	if err != nil {
		return nil, fmt.Errorf("captive: neighbour of %v: open netlink: %w", ip, err)
	}
	ifindex, cached, err := n.routeFor(c, ip)
	if err != nil {
		n.release(c, false)
		return nil, fmt.Errorf("captive: neighbour of %v: route: %w", ip, err)
	}
	entries, err := getNeighbour(c, ifindex, ip)
	if cached && err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EOPNOTSUPP) {
		// Perhaps not on that interface any more: ask the route again.
		n.forgetRoute(ip)
		if ifindex, _, err = n.routeFor(c, ip); err != nil {
			n.release(c, false)
			return nil, fmt.Errorf("captive: neighbour of %v: route: %w", ip, err)
		}
		entries, err = getNeighbour(c, ifindex, ip)
	}
	switch {
	case errors.Is(err, unix.ENOENT):
		// The kernel's answer, not a broken socket.
		n.release(c, true)
		return nil, fmt.Errorf("captive: neighbour of %v: not in the neighbour table", ip)
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOPNOTSUPP):
		entries, err = dumpNeighbours(c)
	}
	n.release(c, err == nil)
	if err != nil {
		return nil, fmt.Errorf("captive: neighbour of %v: %w", ip, err)
	}
	for _, e := range entries {
		if e.ip != ip || len(e.mac) != 6 {
			continue
		}
		if e.state&(unix.NUD_FAILED|unix.NUD_INCOMPLETE|unix.NUD_NOARP) != 0 {
			continue
		}
		return e.mac, nil
	}
	return nil, fmt.Errorf("captive: neighbour of %v: not in the neighbour table", ip)
}

// routeInterface asks the kernel which interface it would send to ip on.
func routeInterface(c *netlink.Conn, ip netip.Addr) (uint32, error) {
	body := make([]byte, rtmsgLen)
	body[0] = unix.AF_INET
	body[1] = 32 // rtm_dst_len
	ae := netlink.NewAttributeEncoder()
	a := ip.As4()
	ae.Bytes(rtaDst, a[:])
	attrs, err := ae.Encode()
	if err != nil {
		return 0, err
	}
	msgs, err := exchange(c, unix.RTM_GETROUTE, append(body, attrs...))
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWROUTE || len(m.Data) < rtmsgLen {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[rtmsgLen:])
		if err != nil {
			return 0, err
		}
		for ad.Next() {
			if ad.Type() == rtaOIF {
				return ad.Uint32(), nil
			}
		}
		if err := ad.Err(); err != nil {
			return 0, err
		}
	}
	return 0, errors.New("the kernel named no interface")
}

// exchangeSeq numbers exchange's requests (any numbering will do: each
// socket carries one request at a time).
var exchangeSeq atomic.Uint32

// exchange sends one request (not a dump) of type typ on c and returns the
// kernel's one answer, or its error as a unix.Errno. It does what
// c.Execute does for a single answer with a send and a receive on the
// socket itself: Execute also peeks at each answer before reading it and
// starts a goroutine per call, which made a lookup cost three times its
// two system calls, and the portal looks its client up for every request.
func exchange(c *netlink.Conn, typ uint16, data []byte) ([]netlink.Message, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	seq := exchangeSeq.Add(1)
	req := make([]byte, unix.NLMSG_HDRLEN+len(data))
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], typ)
	binary.NativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:12], seq)
	copy(req[unix.NLMSG_HDRLEN:], data)
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, fmt.Errorf("send: %w", serr)
	}
	// The kernel answers a get while it handles the send, so the answer
	// is normally queued already; Read waits for it otherwise.
	buf := make([]byte, 4096)
	var n, rflags int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rflags, _, rerr = unix.Recvmsg(int(fd), buf, nil, 0)
		return rerr != unix.EAGAIN
	}); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, fmt.Errorf("receive: %w", rerr)
	}
	if rflags&unix.MSG_TRUNC != 0 {
		return nil, errors.New("receive: answer truncated")
	}
	raw, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("receive: %w", err)
	}
	out := make([]netlink.Message, 0, len(raw))
	for _, m := range raw {
		if m.Header.Seq != seq {
			return nil, fmt.Errorf("receive: answer to request %d, want %d", m.Header.Seq, seq)
		}
		if m.Header.Type == unix.NLMSG_ERROR {
			if len(m.Data) < 4 {
				return nil, errors.New("receive: short error message")
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
				return nil, unix.Errno(-code)
			}
			continue // an acknowledgement
		}
		out = append(out, netlink.Message{Header: netlink.Header{Length: m.Header.Len, Type: netlink.HeaderType(m.Header.Type),
			Flags: netlink.HeaderFlags(m.Header.Flags), Sequence: m.Header.Seq, PID: m.Header.Pid}, Data: m.Data})
	}
	return out, nil
}

type neighbour struct {
	ip    netip.Addr
	mac   net.HardwareAddr
	state uint16
}

// getNeighbour asks for the one entry of ip on ifindex (RTM_GETNEIGH
// without a dump, Linux 5.0 and later).
func getNeighbour(c *netlink.Conn, ifindex uint32, ip netip.Addr) ([]neighbour, error) {
	body := make([]byte, ndmsgLen)
	body[0] = unix.AF_INET
	binary.NativeEndian.PutUint32(body[4:8], ifindex)
	ae := netlink.NewAttributeEncoder()
	a := ip.As4()
	ae.Bytes(ndaDst, a[:])
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	msgs, err := exchange(c, unix.RTM_GETNEIGH, append(body, attrs...))
	if err != nil {
		return nil, err
	}
	return parseNeighbours(msgs)
}

// dumpNeighbours lists the whole IPv4 table.
func dumpNeighbours(c *netlink.Conn) ([]neighbour, error) {
	body := make([]byte, ndmsgLen)
	body[0] = unix.AF_INET
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETNEIGH, Flags: netlink.Request | netlink.Dump},
		Data:   body,
	})
	if err != nil {
		return nil, err
	}
	return parseNeighbours(msgs)
}

func parseNeighbours(msgs []netlink.Message) ([]neighbour, error) {
	var out []neighbour
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWNEIGH || len(m.Data) < ndmsgLen || m.Data[0] != unix.AF_INET {
			continue
		}
		e := neighbour{state: binary.NativeEndian.Uint16(m.Data[8:10])}
		ad, err := netlink.NewAttributeDecoder(m.Data[ndmsgLen:])
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			switch ad.Type() {
			case ndaDst:
				if a, ok := netip.AddrFromSlice(ad.Bytes()); ok {
					e.ip = a.Unmap()
				}
			case ndaLLAddr:
				e.mac = net.HardwareAddr(append([]byte(nil), ad.Bytes()...))
			}
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

package testbed

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// SegmentInfo is a segment as built: the options after defaults, plus where
// its two ends live.
type SegmentInfo struct {
	Segment
	RouterNS        string           // namespace holding Interface
	ClientNS        string           // namespace holding ClientInterface
	ClientInterface string           // always ClientInterface ("eth0")
	RouterMAC       net.HardwareAddr // of Interface
	ClientMAC       net.HardwareAddr // of the client's interface
}

// namespace is one named namespace of the school.
type namespace struct {
	role string // router, internet, mgmt or a segment name
	name string // full name under /run/netns
	h    netns.NsHandle
}

// School is a running simulated school. Its methods are safe for
// concurrent use; Close is idempotent.
type School struct {
	id       string
	log      *slog.Logger
	opts     Options
	segments []SegmentInfo

	nsList []*namespace
	byName map[string]*namespace // by full name and by role

	dns *dnsServer
	web *webServer

	// mu keeps Close from closing namespace handles under a running Do,
	// whose setns would otherwise hit a closed or reused descriptor.
	mu        sync.RWMutex
	closed    bool
	closeOnce sync.Once
	closeErr  error
}

// Start builds a school in fresh namespaces. ctx bounds the setup only; the
// School lives until Close, which the caller must call (also on its panic
// paths). Leftovers of dead instances are removed first.
func Start(ctx context.Context, opts Options) (*School, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if err := cleanStale(); err != nil {
		o.Logger.Warn("testbed: removing stale namespaces", "err", err)
	}
	var rnd [2]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("testbed: random id: %w", err)
	}
	pid := os.Getpid()
	s := &School{
		id:     fmt.Sprintf("gh%dx%04x", pid, binary.BigEndian.Uint16(rnd[:])),
		log:    o.Logger,
		opts:   o,
		byName: map[string]*namespace{},
	}
	start, err := procStart(pid)
	if err != nil {
		return nil, fmt.Errorf("testbed: own start time: %w", err)
	}
	m := marker{PID: pid, Start: start}
	for _, role := range s.roles() {
		m.Namespaces = append(m.Namespaces, s.id+"-"+role)
	}
	// The marker goes first: a concurrent Start in another process must
	// never see our namespaces without an owner record.
	if err := writeMarker(s.id, m); err != nil {
		return nil, err
	}
	if err := s.build(ctx); err != nil {
		if cerr := s.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return s, nil
}

func (s *School) roles() []string {
	r := []string{"router", "internet", "mgmt"}
	for _, seg := range s.opts.Segments {
		r = append(r, seg.Name)
	}
	return r
}

func (s *School) build(ctx context.Context) error {
	for _, role := range s.roles() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("testbed: setup: %w", err)
		}
		name := s.id + "-" + role
		h, err := createNamed(name)
		if err != nil {
			return err
		}
		n := &namespace{role: role, name: name, h: h}
		s.nsList = append(s.nsList, n)
		s.byName[role] = n
		s.byName[name] = n
		if !s.opts.IPv6 {
			// Before any link exists, so every interface inherits "default".
			if err := s.Do(role, disableIPv6); err != nil {
				return fmt.Errorf("testbed: %s: disable IPv6: %w", name, err)
			}
		}
	}
	handles := map[string]*netlink.Handle{}
	defer func() {
		for _, h := range handles {
			h.Close()
		}
	}()
	for _, n := range s.nsList {
		h, err := netlink.NewHandleAt(n.h, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("testbed: netlink handle in %s: %w", n.name, err)
		}
		handles[n.role] = h
		if err := linkUp(h, "lo"); err != nil {
			return fmt.Errorf("testbed: %s: %w", n.name, err)
		}
	}
	router, inet, mgmt := handles["router"], handles["internet"], handles["mgmt"]

	// Uplink: router wan0 <-> internet isp0.
	if err := s.veth(router, UplinkInterface, inet, s.byName["internet"].h, InternetInterface); err != nil {
		return err
	}
	if err := addAddr(router, UplinkInterface, RouterUplinkIP+"/24"); err != nil {
		return err
	}
	if err := addAddr(inet, InternetInterface, InternetLinkIP+"/24"); err != nil {
		return err
	}
	for _, a := range []string{ResolverIP + "/32", WebIP + "/32"} {
		if err := addAddr(inet, "lo", a); err != nil {
			return err
		}
	}
	lo, err := inet.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("testbed: internet lo: %w", err)
	}
	// A local route makes every address of the block bindable without
	// assigning each one.
	if err := inet.RouteAdd(&netlink.Route{
		LinkIndex: lo.Attrs().Index,
		Dst:       ipnet(FakeServerNet),
		Type:      unix.RTN_LOCAL,
		Table:     unix.RT_TABLE_LOCAL,
		Scope:     netlink.SCOPE_HOST,
	}); err != nil {
		return fmt.Errorf("testbed: internet: local route %s: %w", FakeServerNet, err)
	}
	if err := addRoute(inet, "10.0.0.0/8", RouterUplinkIP); err != nil {
		return err
	}
	if err := addRoute(router, "", InternetLinkIP); err != nil {
		return err
	}

	// Management network: router gh-mgmt <-> mgmt eth0.
	if err := s.veth(router, MgmtInterface, mgmt, s.byName["mgmt"].h, ClientInterface); err != nil {
		return err
	}
	if err := addAddr(router, MgmtInterface, MgmtRouterIP+"/24"); err != nil {
		return err
	}
	if err := addAddr(mgmt, ClientInterface, MgmtClientIP+"/24"); err != nil {
		return err
	}
	if err := addRoute(mgmt, "", MgmtRouterIP); err != nil {
		return err
	}

	for _, seg := range s.opts.Segments {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("testbed: setup: %w", err)
		}
		client := handles[seg.Name]
		if err := s.veth(router, seg.Interface, client, s.byName[seg.Name].h, ClientInterface); err != nil {
			return err
		}
		bits := seg.Subnet.Bits()
		if err := addAddr(router, seg.Interface, netip.PrefixFrom(seg.Gateway, bits).String()); err != nil {
			return err
		}
		if !seg.Unconfigured {
			if err := addAddr(client, ClientInterface, netip.PrefixFrom(seg.ClientAddr, bits).String()); err != nil {
				return err
			}
			if err := addRoute(client, "", seg.Gateway.String()); err != nil {
				return err
			}
		}
		info := SegmentInfo{
			Segment:         seg,
			RouterNS:        s.byName["router"].name,
			ClientNS:        s.byName[seg.Name].name,
			ClientInterface: ClientInterface,
		}
		if l, err := router.LinkByName(seg.Interface); err == nil {
			info.RouterMAC = l.Attrs().HardwareAddr
		}
		if l, err := client.LinkByName(ClientInterface); err == nil {
			info.ClientMAC = l.Attrs().HardwareAddr
		}
		s.segments = append(s.segments, info)
	}

	// /proc/sys/net resolves against the network namespace of the thread
	// that opens the file, so this flips forwarding in the router only.
	if err := s.Do("router", func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
	}); err != nil {
		return fmt.Errorf("testbed: router: enable forwarding: %w", err)
	}

	if err := ctx.Err(); err != nil {
		return fmt.Errorf("testbed: setup: %w", err)
	}
	if s.dns, err = startDNS(s, s.opts.DNSRecords, s.log); err != nil {
		return err
	}
	if s.web, err = startWeb(s, s.opts.DNSRecords, s.log); err != nil {
		return err
	}
	return nil
}

// disableIPv6 runs inside a namespace. A kernel without IPv6 has nothing
// to disable.
func disableIPv6() error {
	for _, p := range []string{"/proc/sys/net/ipv6/conf/default/disable_ipv6", "/proc/sys/net/ipv6/conf/all/disable_ipv6"} {
		if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// OpenNS returns a new handle to namespace ns (a full name or a role), for
// APIs that take a namespace file descriptor, such as
// netlink.NewHandleAt or nftables.WithNetNSFd. The caller closes it; the
// namespace itself still goes away at Close.
func (s *School) OpenNS(ns string) (netns.NsHandle, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return netns.None(), fmt.Errorf("testbed: namespace %q: school closed", ns)
	}
	n, ok := s.byName[ns]
	if !ok {
		return netns.None(), fmt.Errorf("testbed: unknown namespace %q", ns)
	}
	fd, err := unix.FcntlInt(uintptr(n.h), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return netns.None(), fmt.Errorf("testbed: duplicate handle of %s: %w", n.name, err)
	}
	return netns.NsHandle(fd), nil
}

// veth creates a veth pair with one end directly in each namespace (the
// link is created by a handle inside the first namespace, with the peer
// placed by file descriptor), so no end ever appears in the host namespace,
// and brings both ends up.
func (s *School) veth(a *netlink.Handle, aName string, b *netlink.Handle, bNS netns.NsHandle, bName string) error {
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(int(bNS)),
	}
	if err := a.LinkAdd(v); err != nil {
		return fmt.Errorf("testbed: create veth %s/%s: %w", aName, bName, err)
	}
	if err := linkUp(a, aName); err != nil {
		return err
	}
	return linkUp(b, bName)
}

func linkUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("testbed: find link %s: %w", name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("testbed: set %s up: %w", name, err)
	}
	return nil
}

func addAddr(h *netlink.Handle, link, cidr string) error {
	l, err := h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("testbed: find link %s: %w", link, err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return fmt.Errorf("testbed: parse %s: %w", cidr, err)
	}
	if err := h.AddrAdd(l, a); err != nil {
		return fmt.Errorf("testbed: add %s to %s: %w", cidr, link, err)
	}
	return nil
}

// addRoute adds a route to dst (empty: default) via gw.
func addRoute(h *netlink.Handle, dst, gw string) error {
	r := &netlink.Route{Gw: net.ParseIP(gw)}
	if dst != "" {
		r.Dst = ipnet(dst)
	}
	if err := h.RouteAdd(r); err != nil {
		return fmt.Errorf("testbed: route %q via %s: %w", dst, gw, err)
	}
	return nil
}

func ipnet(cidr string) *net.IPNet {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		panic("testbed: bad built-in prefix " + cidr)
	}
	return n
}

// Close stops the servers, kills every process running in the school's
// namespaces, and removes the namespaces and the owner marker. It is safe
// to call more than once; later calls return the first result.
func (s *School) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *School) close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	var errs []error
	if s.web != nil {
		errs = append(errs, s.web.close())
	}
	if s.dns != nil {
		errs = append(errs, s.dns.close())
	}
	for _, n := range s.nsList {
		errs = append(errs, killProcsIn(n.path()))
	}
	for _, n := range s.nsList {
		n.h.Close()
		errs = append(errs, deleteNamed(n.name))
	}
	if err := os.Remove(markerPath(s.id)); err != nil && !os.IsNotExist(err) {
		errs = append(errs, fmt.Errorf("testbed: remove marker: %w", err))
	}
	return errors.Join(errs...)
}

func (n *namespace) path() string { return netnsDir + "/" + n.name }

// ID is the instance id, the prefix of every namespace name.
func (s *School) ID() string { return s.id }

// RouterNS is the router namespace's name.
func (s *School) RouterNS() string { return s.byName["router"].name }

// InternetNS is the internet namespace's name.
func (s *School) InternetNS() string { return s.byName["internet"].name }

// MgmtNS is the management namespace's name (10.99.0.10, the access points).
func (s *School) MgmtNS() string { return s.byName["mgmt"].name }

// ClientNS is the client namespace of a segment, or "" for an unknown one.
func (s *School) ClientNS(segment string) string {
	for _, seg := range s.segments {
		if seg.Name == segment {
			return seg.ClientNS
		}
	}
	return ""
}

// Namespaces lists every namespace of the school, sorted.
func (s *School) Namespaces() []string {
	var out []string
	for _, n := range s.nsList {
		out = append(out, n.name)
	}
	sort.Strings(out)
	return out
}

// Segments returns the segments as built, in option order.
func (s *School) Segments() []SegmentInfo {
	out := make([]SegmentInfo, len(s.segments))
	copy(out, s.segments)
	return out
}

// Segment returns one segment by name.
func (s *School) Segment(name string) (SegmentInfo, bool) {
	for _, seg := range s.segments {
		if seg.Name == name {
			return seg, true
		}
	}
	return SegmentInfo{}, false
}

// Do runs fn with its OS thread inside namespace ns (a full name or a role:
// "router", "internet", "mgmt" or a segment name). Sockets created by fn
// keep that namespace after Do returns. Close waits for running Do calls,
// so fn should not block for long. fn runs on a goroutine of its own:
// goroutines it starts are NOT in the namespace, and it must return errors
// rather than call t.FailNow. A panic in fn is re-raised in the caller.
func (s *School) Do(ns string, fn func() error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("testbed: namespace %q: school closed", ns)
	}
	n, ok := s.byName[ns]
	if !ok {
		return fmt.Errorf("testbed: unknown namespace %q", ns)
	}
	return doIn(n.h, fn)
}

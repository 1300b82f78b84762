package dhcp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// errExhausted means no address can be offered.
var errExhausted = errors.New("pool exhausted")

// entry is the pool's knowledge of one address. The binding (mac, state,
// expires, lease) is what was last committed; an offer lives beside it so
// that offering an address never forgets who held it before.
type entry struct {
	ip         netip.Addr
	mac        string // "" when no one holds it (declined)
	lease      Lease  // last committed binding
	offerMAC   string
	offerUntil time.Time
}

func (e *entry) bound(now time.Time) bool { return e.lease.Active(now) }
func (e *entry) declined(now time.Time) bool {
	return e.lease.State == StateDeclined && now.Before(e.lease.Expires)
}
func (e *entry) offeredTo(now time.Time) string {
	if e.offerMAC != "" && now.Before(e.offerUntil) {
		return e.offerMAC
	}
	return ""
}

// pool is one segment's address state. Its methods are safe for concurrent
// use; the handler holds no other lock while calling them.
type pool struct {
	seg    Segment
	first  uint32
	last   uint32
	hold   time.Duration // how long an offer keeps its address
	mu     sync.Mutex
	byIP   map[netip.Addr]*entry
	byMAC  map[string]*entry // current binding of each MAC
	offers map[string]*entry // outstanding offer of each MAC
	resvIP map[netip.Addr]string
	resvMC map[string]netip.Addr
	cursor uint32
	// untouched counts range addresses with no entry and no reservation,
	// so the scan for a never-used address stops as soon as there is none.
	untouched int
	excluded  map[netip.Addr]bool // gateway and server id inside the range

	exhaustedRaised bool
}

func ip4u(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }
func u4ip(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

func newPool(seg Segment, offerHold time.Duration) *pool {
	p := &pool{
		seg:      seg,
		first:    ip4u(seg.RangeStart),
		last:     ip4u(seg.RangeEnd),
		hold:     offerHold,
		byIP:     map[netip.Addr]*entry{},
		byMAC:    map[string]*entry{},
		offers:   map[string]*entry{},
		resvIP:   map[netip.Addr]string{},
		resvMC:   map[string]netip.Addr{},
		excluded: map[netip.Addr]bool{},
	}
	p.cursor = p.first
	for _, a := range []netip.Addr{seg.Gateway, seg.serverID(), seg.Subnet.Masked().Addr(), broadcastOf(seg.Subnet)} {
		if p.inRange(a) {
			p.excluded[a] = true
		}
	}
	p.recount()
	return p
}

func broadcastOf(p netip.Prefix) netip.Addr {
	u := ip4u(p.Masked().Addr()) | (1<<(32-p.Bits()) - 1)
	return u4ip(u)
}

func (p *pool) inRange(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	u := ip4u(a)
	return u >= p.first && u <= p.last
}

// usable reports whether a may be leased at all on this segment.
func (p *pool) usable(a netip.Addr) bool {
	if !a.Is4() || p.excluded[a] || !p.seg.Subnet.Contains(a) || a == broadcastOf(p.seg.Subnet) || a == p.seg.Subnet.Masked().Addr() {
		return false
	}
	if p.inRange(a) {
		return true
	}
	_, reserved := p.resvIP[a]
	return reserved
}

func (p *pool) recount() {
	n := int(p.last-p.first) + 1
	n -= len(p.excluded)
	for a := range p.byIP {
		if p.inRange(a) && !p.excluded[a] {
			n--
		}
	}
	for a := range p.resvIP {
		if _, ok := p.byIP[a]; !ok && p.inRange(a) && !p.excluded[a] {
			n--
		}
	}
	p.untouched = n
}

// setReservations replaces the segment's reservations.
func (p *pool) setReservations(rs []Reservation) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resvIP = map[netip.Addr]string{}
	p.resvMC = map[string]netip.Addr{}
	for _, r := range rs {
		if !p.seg.Subnet.Contains(r.IP) || p.excluded[r.IP] {
			continue
		}
		p.resvIP[r.IP] = r.MAC.String()
		p.resvMC[r.MAC.String()] = r.IP
	}
	p.recount()
}

// restore loads committed leases at start. Leases outside the configured
// range (the configuration changed) are forgotten.
func (p *pool) restore(ls []Lease) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range ls {
		if !p.seg.Subnet.Contains(l.IP) || (!p.inRange(l.IP) && p.resvIP[l.IP] == "") || p.excluded[l.IP] {
			continue
		}
		e := &entry{ip: l.IP, lease: l}
		if len(l.MAC) > 0 && l.State != StateDeclined {
			e.mac = l.MAC.String()
			if old := p.byMAC[e.mac]; old == nil || old.lease.Start.Before(l.Start) {
				p.byMAC[e.mac] = e
			}
		}
		p.byIP[l.IP] = e
	}
	p.recount()
}

// availableTo reports whether mac may take a, given who else holds,
// was offered, reserved or declined it.
func (p *pool) availableTo(a netip.Addr, mac string, now time.Time) bool {
	if !p.usable(a) {
		return false
	}
	if r, ok := p.resvIP[a]; ok && r != mac {
		return false
	}
	e := p.byIP[a]
	if e == nil {
		return true
	}
	if e.declined(now) {
		return false
	}
	if o := e.offeredTo(now); o != "" && o != mac {
		return false
	}
	return e.mac == mac || e.mac == "" || !e.bound(now)
}

// offer picks an address for mac and holds it for the offer time.
// requested is the client's option 50, possibly invalid.
func (p *pool) offer(mac string, requested netip.Addr, now time.Time) (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.pick(mac, requested, now)
	if !ok {
		return netip.Addr{}, errExhausted
	}
	e := p.byIP[a]
	if e == nil {
		e = &entry{ip: a}
		p.byIP[a] = e
		if p.inRange(a) {
			if _, reserved := p.resvIP[a]; !reserved {
				p.untouched--
			}
		}
	}
	if old := p.offers[mac]; old != nil && old != e {
		old.offerMAC = ""
	}
	e.offerMAC, e.offerUntil = mac, now.Add(p.hold)
	p.offers[mac] = e
	return a, nil
}

func (p *pool) pick(mac string, requested netip.Addr, now time.Time) (netip.Addr, bool) {
	if a, ok := p.resvMC[mac]; ok && p.availableTo(a, mac, now) {
		return a, true
	}
	if e := p.offers[mac]; e != nil && e.offeredTo(now) == mac && p.availableTo(e.ip, mac, now) {
		return e.ip, true
	}
	if e := p.byMAC[mac]; e != nil && p.availableTo(e.ip, mac, now) {
		return e.ip, true
	}
	if requested.IsValid() && p.availableTo(requested, mac, now) {
		if e := p.byIP[requested]; e == nil || e.mac == "" || e.mac == mac {
			return requested, true
		}
	}
	// A never-used address keeps everyone's old address free for their
	// return; only when none is left is an old binding reclaimed.
	if p.untouched > 0 {
		span := p.last - p.first + 1
		for i := uint32(0); i < span; i++ {
			a := u4ip(p.cursor)
			p.cursor++
			if p.cursor > p.last {
				p.cursor = p.first
			}
			if _, used := p.byIP[a]; used || p.excluded[a] {
				continue
			}
			if _, reserved := p.resvIP[a]; reserved {
				continue
			}
			return a, true
		}
	}
	var best *entry
	for _, e := range p.byIP {
		if !p.inRange(e.ip) || !p.availableTo(e.ip, mac, now) {
			continue
		}
		if best == nil || e.lease.Expires.Before(best.lease.Expires) {
			best = e
		}
	}
	if best == nil {
		return netip.Addr{}, false
	}
	return best.ip, true
}

// cancelOffer drops mac's outstanding offer (the client chose another server).
func (p *pool) cancelOffer(mac string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.offers[mac]; e != nil {
		if e.offerMAC == mac {
			e.offerMAC = ""
		}
		delete(p.offers, mac)
	}
}

// holder returns the MAC that currently holds a ("" for none) and mac's
// own current binding, for INIT-REBOOT decisions.
func (p *pool) lookup(a netip.Addr, mac string, now time.Time) (holder string, own netip.Addr, known bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.byIP[a]; e != nil && e.bound(now) {
		holder = e.mac
	}
	if e := p.byMAC[mac]; e != nil {
		own, known = e.ip, true
	}
	return holder, own, known
}

// canBind reports whether mac may be acknowledged for a now.
func (p *pool) canBind(a netip.Addr, mac string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.availableTo(a, mac, now)
}

// heldUntil reports until when mac holds a bound lease on a now, and
// whether it does: what the kernel's binding of the pair should say.
func (p *pool) heldUntil(a netip.Addr, mac string, now time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.byIP[a]; e != nil && e.mac == mac && e.bound(now) {
		return e.lease.Expires, true
	}
	return time.Time{}, false
}

// bindToken lets a failed commit undo exactly the binding it made.
type bindToken struct {
	e        *entry
	prev     Lease
	prevMAC  string
	created  bool
	moved    *entry // mac's previous entry, dropped by this binding
	movedMAC string
}

// bind records l (already checked with canBind) in memory, ahead of its
// commit. If the commit fails, undo(token) puts things back.
func (p *pool) bind(l Lease) (bindToken, bool) { return p.bindMAC(l, l.MAC.String()) }

// bindMAC is bind with l.MAC's string form, which the caller has.
func (p *pool) bindMAC(l Lease, mac string) (bindToken, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.availableTo(l.IP, mac, l.Start) {
		return bindToken{}, false
	}
	e := p.byIP[l.IP]
	t := bindToken{}
	if e == nil {
		e = &entry{ip: l.IP}
		p.byIP[l.IP] = e
		t.created = true
		if p.inRange(l.IP) {
			if _, reserved := p.resvIP[l.IP]; !reserved {
				p.untouched--
			}
		}
	}
	t.e, t.prev, t.prevMAC = e, e.lease, e.mac
	if e.mac != "" && e.mac != mac && p.byMAC[e.mac] == e {
		delete(p.byMAC, e.mac)
	}
	if old := p.byMAC[mac]; old != nil && old != e {
		// The store forgets the MAC's other lease in the same batch.
		t.moved, t.movedMAC = old, old.mac
		old.mac = ""
		old.lease.State = StateReleased
		old.lease.MAC = nil
	}
	e.mac, e.lease = mac, l
	if e.offerMAC == mac {
		e.offerMAC = ""
	}
	if p.offers[mac] != nil {
		delete(p.offers, mac)
	}
	p.byMAC[mac] = e
	return t, true
}

func (p *pool) undo(t bindToken) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := t.e
	mac := e.mac
	if p.byMAC[mac] == e {
		delete(p.byMAC, mac)
	}
	e.mac, e.lease = t.prevMAC, t.prev
	if e.mac != "" {
		p.byMAC[e.mac] = e
	}
	if t.moved != nil {
		t.moved.mac = t.movedMAC
		t.moved.lease.State = StateBound
		t.moved.lease.MAC, _ = net.ParseMAC(t.movedMAC)
		if p.byMAC[t.movedMAC] == nil {
			p.byMAC[t.movedMAC] = t.moved
		}
	}
	if t.created && e.mac == "" {
		delete(p.byIP, e.ip)
		if p.inRange(e.ip) {
			if _, reserved := p.resvIP[e.ip]; !reserved {
				p.untouched++
			}
		}
	}
}

// release marks mac's lease on a released; it returns the lease to persist.
func (p *pool) release(a netip.Addr, mac string, now time.Time) (Lease, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.byIP[a]
	if e == nil || e.mac != mac || e.lease.State != StateBound {
		return Lease{}, false
	}
	e.lease.State = StateReleased
	e.lease.Expires = now
	return e.lease, true
}

// decline quarantines a for hold after mac reported it in use. A holder
// may decline only within window of its lease starting (late: it tried
// later); an outstanding offer may always be declined.
func (p *pool) decline(a netip.Addr, mac string, now time.Time, hold, window time.Duration) (l Lease, ok, late bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.byIP[a]
	if e == nil || (e.mac != mac && e.offerMAC != mac) {
		return Lease{}, false, false
	}
	if e.offerMAC != mac && now.Sub(e.lease.Start) > window {
		return Lease{}, false, true
	}
	if p.byMAC[mac] == e {
		delete(p.byMAC, mac)
	}
	if p.offers[mac] == e {
		delete(p.offers, mac)
	}
	e.mac, e.offerMAC = "", ""
	e.lease = Lease{Segment: p.seg.Name, IP: a, State: StateDeclined, Start: now, Expires: now.Add(hold)}
	return e.lease, true, false
}

// knows reports whether mac holds a binding or an offer in the pool.
func (p *pool) knows(mac string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byMAC[mac] != nil || p.offers[mac] != nil
}

// expired returns bound leases whose time ran out in (since, now].
func (p *pool) expired(since, now time.Time) []Lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Lease
	for _, e := range p.byIP {
		l := e.lease
		if l.State == StateBound && !l.Expires.After(now) && l.Expires.After(since) {
			out = append(out, l)
		}
		if e.offerMAC != "" && !now.Before(e.offerUntil) {
			if p.offers[e.offerMAC] == e {
				delete(p.offers, e.offerMAC)
			}
			e.offerMAC = ""
		}
	}
	return out
}

// leases returns every binding the pool remembers.
func (p *pool) leases() []Lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Lease, 0, len(p.byIP))
	for _, e := range p.byIP {
		if e.lease.IP.IsValid() {
			out = append(out, e.lease)
		}
	}
	return out
}

// noteExhausted returns true the first time the pool runs dry after having
// had room, so the finding is raised once, not per packet.
func (p *pool) noteExhausted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exhaustedRaised {
		return false
	}
	p.exhaustedRaised = true
	return true
}

func (p *pool) noteAllocated() {
	p.mu.Lock()
	p.exhaustedRaised = false
	p.mu.Unlock()
}

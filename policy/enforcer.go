package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// Device is one client as the enforcer sees it. Either field may be unset where
// an operation says so.
type Device struct {
	MAC net.HardwareAddr
	IP  netip.Addr
}

func (d Device) String() string { return fmt.Sprintf("%v/%v", d.MAC, d.IP) }

// Options are the enforcer's dependencies.
type Options struct {
	// NetNSFd, when non-zero, is an open /var/run/netns/... (or /proc/PID/ns/net)
	// file descriptor: the enforcer programs that namespace instead of the
	// caller's. The caller keeps it open for the enforcer's lifetime.
	NetNSFd int
	// Now is the clock for element timeouts and rule time slots; time.Now
	// when nil.
	Now func() time.Time
	// Flows deletes conntrack entries of an address that lost access; when
	// nil, one is dialled in the same namespace.
	Flows FlowKiller

	// testDial, set only by this package's tests, replaces the kernel with
	// a function that sees every netlink message (the golden table test).
	testDial nltest.Func
}

// FlowKiller removes the kernel's connection-tracking entries of an address so
// that its established connections meet the ruleset again at the next packet.
type FlowKiller interface {
	KillFlows(ctx context.Context, ip netip.Addr) (int, error)
	Close() error
}

// Enforcer keeps the "inet gatehouse" table in the kernel equal to the desired
// state it holds: the network's compiled rules and the membership sets. It is
// safe for concurrent use.
type Enforcer struct {
	log   *slog.Logger
	now   func() time.Time
	flows FlowKiller

	checks checkRecord // Run's last drift check (checkstatus.go)

	mu      sync.Mutex
	cc      *nftables.Conn
	net     Network
	rules   []Rule
	dir     Directory
	rs      *ruleset
	members map[string]map[string]member // set name -> key bytes -> element
	quotas  map[string]*quota            // IPv4 key -> data budget
	netnsFd int                          // Options.NetNSFd: 0 when the enforcer runs in its own namespace
	// leftovers are quota objects that may still be in the kernel though
	// no admission wants them, so that a new budget of the same name is
	// not started from an old count.
	leftovers map[string]bool
	applied   bool
	// exact is set while the kernel's sets hold no element of ours that
	// the desired state lacks: after a rebuild (Apply replaces the table)
	// or a complete element repair, until a transaction fails (a refused
	// delete leaves its element behind). While it is set, an element new
	// to the desired state is new to the kernel too, and one add is
	// enough (queueOps).
	exact atomic.Bool

	elems   *elemWriter  // element-only transactions (elemnl.go); nil under testDial
	cleaner flowCleaner  // conntrack cleanup after evictions and revocations (flowcleaner.go)
	admits  admitBatcher // admissions that share a transaction (admitbatch.go)
	plan    opPlan       // planOps' working storage, kept between plans
}

// New validates n and opens a netlink connection (in opts.NetNSFd's namespace
// when given). It changes nothing in the kernel until Apply.
func New(opts Options, n Network, logger *slog.Logger) (*Enforcer, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	connOpts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(bigBuffers)}
	if opts.NetNSFd != 0 {
		connOpts = append(connOpts, nftables.WithNetNSFd(opts.NetNSFd))
	}
	if opts.testDial != nil {
		// No socket, so no socket buffers to raise.
		connOpts = []nftables.ConnOption{nftables.AsLasting(), nftables.WithTestDial(opts.testDial)}
	}
	cc, err := nftables.New(connOpts...)
	if err != nil {
		return nil, fmt.Errorf("policy: open nftables netlink: %w", err)
	}
	flows := opts.Flows
	if flows == nil {
		flows, err = DialConntrack(opts.NetNSFd)
		if err != nil {
			_ = cc.CloseLasting()
			return nil, err
		}
	}
	var elems *elemWriter
	if opts.testDial == nil {
		if elems, err = dialElemWriter(opts.NetNSFd); err != nil {
			_ = cc.CloseLasting()
			if opts.Flows == nil {
				_ = flows.Close()
			}
			return nil, err
		}
	}
	e := &Enforcer{log: logger.With("component", "policy"), now: now, flows: flows, cc: cc, elems: elems, net: n, netnsFd: opts.NetNSFd,
		members: map[string]map[string]member{}, quotas: map[string]*quota{}, leftovers: map[string]bool{}}
	for _, s := range membershipSets(newTable()) {
		e.members[s.Name] = map[string]member{}
	}
	return e, nil
}

// batchBuffer is the netlink socket's send and receive buffer. A rebuild is one
// sendmsg of the whole table and brings one acknowledgement per message back;
// with a quota object and chain per visitor that is about 1 KiB sent and four
// acknowledgements per visitor, beyond the kernel's 208 KiB default. It is a
// ceiling, not an allocation.
const batchBuffer = 32 << 20

// bigBuffers raises the socket's buffers past the system's maximum (we run
// with CAP_NET_ADMIN); where that is refused it asks for what the system
// allows.
func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("policy: netlink socket: %w", err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], batchBuffer); e != nil {
				if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], batchBuffer); e != nil {
					serr = errors.Join(serr, e)
				}
			}
		}
	})
	if err := errors.Join(err, serr); err != nil {
		return fmt.Errorf("policy: netlink socket buffers: %w", err)
	}
	return nil
}

// Close releases the netlink connections, Options.Flows included. The table
// stays in the kernel: a daemon that stops keeps enforcing.
func (e *Enforcer) Close() error {
	e.closeAdmits()
	e.closeCleaner()
	e.mu.Lock()
	defer e.mu.Unlock()
	var derr error
	if e.elems != nil {
		derr = e.elems.close()
	}
	return errors.Join(e.cc.CloseLasting(), e.flows.Close(), derr)
}

// SetRules replaces the school's rules and the directory that resolves their
// "who". They take effect at the next Apply or Sync.
func (e *Enforcer) SetRules(rules []Rule, dir Directory) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = append([]Rule(nil), rules...)
	e.dir = dir
}

// LoadRules reads the school's rules from the store and sets them, checking
// each against the network first so that one bad rule does not reach Apply.
func (e *Enforcer) LoadRules(ctx context.Context, rs RuleStore, dir Directory) error {
	rules, err := rs.ListRules(ctx)
	if err != nil {
		return fmt.Errorf("policy: load rules: %w", err)
	}
	for _, r := range rules {
		if err := r.Validate(e.net); err != nil {
			return err
		}
	}
	e.SetRules(rules, dir)
	return nil
}

// Apply builds the whole table from the desired state in one transaction,
// replacing whatever table of ours the kernel holds. Before the first Apply,
// membership calls only record desired state, so a daemon can load its
// database and then Apply once.
func (e *Enforcer) Apply(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.applyLocked(ctx)
}

func (e *Enforcer) applyLocked(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("policy: apply: %w", err)
	}
	e.drainLocked()
	now := e.now()
	user, err := compileActive(ctx, e.net, e.rules, e.dir, now)
	if err != nil {
		return err
	}
	for _, err := range user.skipped {
		e.log.Warn("rule not in force", "err", err)
	}
	rs := build(e.net, user)
	e.pruneLocked(now)
	e.readQuotaUsage()
	if err := rs.program(e.cc, e.elementsLocked(now), e.quotas); err != nil {
		return err
	}
	if err := e.flush(); err != nil {
		return fmt.Errorf("policy: apply table inet %s: %w", TableName, err)
	}
	// The table was replaced whole: it holds the desired elements and no others.
	e.exact.Store(true)
	e.rs = rs
	e.applied = true
	clear(e.leftovers)
	if err := e.setRPFilter(); err != nil {
		// The table is in force; a missing interface (not up yet) is
		// worth a warning, not a refusal of the whole ruleset.
		e.log.Warn("reverse-path filter not set", "err", err)
	}
	e.log.Info("table applied", "chains", len(rs.chains), "rules", rs.ruleCount())
	return nil
}

func (rs *ruleset) ruleCount() int {
	n := 0
	for _, c := range rs.chains {
		n += len(c.rules)
	}
	return n
}

// expiryGrace is how long after its until an element may linger in the kernel
// (whose garbage collector runs on its own schedule) before it counts as drift.
const expiryGrace = 2 * time.Second

func (e *Enforcer) pruneLocked(now time.Time) {
	for _, m := range e.members {
		for k, el := range m {
			if !el.until.IsZero() && now.After(el.until.Add(expiryGrace)) {
				delete(m, k)
			}
		}
	}
	for k, q := range e.quotas {
		if now.After(q.until.Add(expiryGrace)) {
			delete(e.quotas, k)
			// Its object stays in the kernel until a check sweeps it.
			e.leftovers[q.objName()] = true
		}
	}
}

func (e *Enforcer) elementsLocked(now time.Time) map[string][]nftables.SetElement {
	out := map[string][]nftables.SetElement{}
	for name, m := range e.members {
		for k, mb := range m {
			el, ok := element(k, mb, now)
			if ok {
				out[name] = append(out[name], el)
			}
		}
	}
	return out
}

// member is one desired set element.
type member struct {
	until time.Time // zero: no timeout
	jump  string    // for a verdict map: the chain the element jumps to
}

// element turns a desired member into a kernel element; false when it has
// already run out.
func element(key string, m member, now time.Time) (nftables.SetElement, bool) {
	return elementOf([]byte(key), m, now)
}

// elementOf is element with the key's bytes given (planOps' own).
func elementOf(key []byte, m member, now time.Time) (nftables.SetElement, bool) {
	el := nftables.SetElement{Key: key}
	if m.jump != "" {
		el.VerdictData = &expr.Verdict{Kind: expr.VerdictJump, Chain: m.jump}
	}
	if !m.until.IsZero() {
		left := m.until.Sub(now).Round(time.Millisecond)
		if left <= 0 {
			return el, false
		}
		el.Timeout = left
	}
	return el, true
}

func macKey(mac net.HardwareAddr) (string, error) {
	if len(mac) != 6 {
		return "", fmt.Errorf("need a 6-byte MAC, got %q", mac)
	}
	return string(mac), nil
}

func ipKey(ip netip.Addr) (string, error) {
	if !ip.Is4() {
		return "", fmt.Errorf("need an IPv4 address, got %v", ip)
	}
	a := ip.As4()
	return string(a[:]), nil
}

// admittedKey is ether_addr (6 bytes, padded to a register's 8) . ipv4_addr.
func admittedKey(d Device) (string, error) {
	m, err := macKey(d.MAC)
	if err != nil {
		return "", err
	}
	i, err := ipKey(d.IP)
	if err != nil {
		return "", err
	}
	return m + "\x00\x00" + i, nil
}

type op struct {
	set   string
	key   string
	add   bool
	until time.Time
	jump  string
	// was is the chain a verdict-map element jumps to in the kernel now,
	// if it is there: re-adding an element with other data is refused.
	was string
	// fresh marks an add of an element the desired state did not hold
	// when it was recorded (recordLocked).
	fresh bool
}

// flush sends the queued messages as one transaction. When the kernel
// refuses it (or its answer is lost), the sets may keep elements the
// desired state no longer has, so adds go the careful way (queueOps) until
// the next rebuild or repair.
func (e *Enforcer) flush() error {
	err := e.cc.Flush()
	if err != nil {
		e.exact.Store(false)
	}
	return err
}

// change records ops in the desired state and, once the table exists, sends
// them to the kernel as one transaction.
func (e *Enforcer) change(ctx context.Context, what string, ops []op) error {
	return e.changeFunc(ctx, what, func() []op { return ops })
}

// changeFunc is change with the ops worked out under the lock, for ops that
// depend on the current members.
func (e *Enforcer) changeFunc(ctx context.Context, what string, opsOf func() []op) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("policy: %s: %w", what, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changeLocked(what, opsOf(), e.now())
}

// changeLocked records ops and sends them as one transaction. An op that adds
// a quota element brings the device's quota object and chain (which must be
// in e.quotas) into the same transaction ahead of it; an op that removes one
// drops the quota after it.
func (e *Enforcer) changeLocked(what string, ops []op, now time.Time) error {
	e.drainLocked()
	batch, drop := e.recordLocked(ops)
	if !e.applied {
		for _, k := range drop {
			delete(e.quotas, k)
		}
		return nil
	}
	quota := false
	for _, o := range batch {
		quota = quota || (o.set == SetBudget && o.add)
	}
	if !quota && len(batch) > 0 {
		if err := e.sendOps(batch, now); err != nil {
			return fmt.Errorf("policy: %s: %w", what, err)
		}
	} else if len(batch) > 0 {
		for _, o := range batch {
			if o.set == SetBudget && o.add {
				e.queueQuota(e.quotas[o.key], false)
			}
		}
		if err := e.queueOps(batch, now); err != nil {
			return fmt.Errorf("policy: %s: %w", what, err)
		}
		if err := e.flush(); err != nil {
			return fmt.Errorf("policy: %s: %w", what, err)
		}
	}
	for _, k := range drop {
		e.dropQuotaLocked(k)
	}
	return nil
}

// errNotFast is planOps' answer when the enforcer's socket cannot carry
// the transaction: it goes the library's way.
var errNotFast = errors.New("policy: not for the fast element path")

// sendOps sends ops (element changes only: no quota object) as one
// transaction: through the enforcer's own socket (elemnl.go) when it
// takes them, through the library otherwise. A refused transaction makes
// adds careful, as flush does.
func (e *Enforcer) sendOps(ops []op, now time.Time) error {
	if d := e.elems; d != nil {
		d.begin()
		err := e.planOps(ops, now, func(s *nftables.Set, del bool, els []nftables.SetElement) error {
			if !d.elements(s, del, els) {
				return errNotFast
			}
			return nil
		})
		if err == nil {
			first, last := d.end()
			if last < first {
				return nil // nothing the kernel lacks
			}
			if err := d.send(first, last); err != nil {
				e.exact.Store(false)
				return err
			}
			return nil
		}
		if !errors.Is(err, errNotFast) {
			return err
		}
	}
	err := e.queueOps(ops, now)
	if ferr := e.flush(); err == nil { // on err, Flush drops what was queued
		err = ferr
	}
	return err
}

// recordLocked records ops in the desired state and returns those the
// kernel needs (an add, or a delete of something there) and the quota keys
// whose budget element goes.
func (e *Enforcer) recordLocked(ops []op) (batch []op, drop []string) {
	for _, o := range ops {
		m := e.members[o.set]
		_, had := m[o.key]
		if o.add {
			batch = append(batch, e.recordAddLocked(o))
		} else if had {
			delete(m, o.key)
			batch = append(batch, o)
		}
		if o.set == SetBudget && !o.add {
			drop = append(drop, o.key)
		}
	}
	return batch, drop
}

// recordAddLocked records one add (as recordLocked does) and returns it
// as the kernel needs it.
func (e *Enforcer) recordAddLocked(o op) op {
	m := e.members[o.set]
	prev, had := m[o.key]
	o.was = prev.jump
	o.fresh = !had
	m[o.key] = member{until: o.until, jump: o.jump}
	return o
}

// queueOps queues ops for the next transaction as a few messages per set,
// not a few per element: at a rush of new leases the kernel parses one
// message and sends one acknowledgement for a whole batch, and the library
// reads one.
//
// An add of an element new to the kernel (fresh, while exact, and the first
// op on its key here) is one plain add. Any other add is add, delete, add:
// the element may be in the kernel already; the first add makes the delete
// valid when it is not, and the last add carries the new timeout (and
// verdict) when it is (the kernel keeps an existing element on a plain add).
// A key that only one op here touches joins its set's messages (new
// elements, first adds, deletes, last adds, in that order); elements of a
// set do not depend on one another, so the outcome is the one of sending
// each op in turn. The ops on a key touched more than once follow in their
// own order, an element at a time, after its new element if it was one:
// the kernel would take them in one message too, but the set's messages
// are grouped by kind, which would reorder them (an admission and the
// eviction after it in one batch would leave the element in). That is
// rare, so it costs little. Every message's element list is split to stay
// under netlink's 64 KiB attribute length (setElements).
func (e *Enforcer) queueOps(ops []op, now time.Time) error {
	return e.planOps(ops, now, func(s *nftables.Set, del bool, els []nftables.SetElement) error {
		return setElements(e.cc, s, del, els)
	})
}

// planOps is queueOps with the messages handed to put, each a set's
// elements to add (or delete) in one message.
//
// Its working storage (plan) is kept from call to call for plans of up
// to planKeepOps ops: a DHCP group commit's bindings come through here,
// and building the maps, the element lists and a copy of every key afresh
// for each batch was the largest garbage the enforcer made per lease (the
// deployed daemon's p99 falls in the collector's mark phases). Callers
// are exclusive already (e.mu with nothing in flight, or the admission
// batcher's nl, as for e.cc and e.elems), and put consumes the elements
// before it returns (both puts build their messages at once), so the
// storage is free again when planOps returns. Larger plans (a rebuild's
// repair) use storage of their own, so that it is not kept.
func (e *Enforcer) planOps(ops []op, now time.Time, put func(s *nftables.Set, del bool, els []nftables.SetElement) error) error {
	pl := &e.plan
	if len(ops) > planKeepOps {
		pl = &opPlan{}
	}
	pl.reset(ops)
	defer pl.done()
	exact := e.exact.Load()
	for _, o := range ops {
		c := pl.count[opKey{o.set, o.key}]
		c.n++
		pl.count[opKey{o.set, o.key}] = c
	}
	for _, o := range ops {
		tk := opKey{o.set, o.key}
		c := pl.count[tk]
		firstTouch := !c.seen
		if firstTouch {
			c.seen = true
			pl.count[tk] = c
		}
		if !o.add {
			if c.n > 1 {
				pl.rest = append(pl.rest, o)
			} else {
				g := pl.group(o.set)
				g.del = append(g.del, nftables.SetElement{Key: pl.key(o.key)})
			}
			continue
		}
		if exact && o.fresh && firstTouch {
			el, ok := elementOf(pl.key(o.key), member{until: o.until, jump: o.jump}, now)
			if ok {
				g := pl.group(o.set)
				g.fresh = append(g.fresh, el)
			}
			continue
		}
		if c.n > 1 {
			pl.rest = append(pl.rest, o)
			continue
		}
		el, ok := elementOf(pl.key(o.key), member{until: o.until, jump: o.jump}, now)
		if !ok {
			continue
		}
		g := pl.group(o.set)
		first := el
		if o.was != "" {
			first.VerdictData = &expr.Verdict{Kind: expr.VerdictJump, Chain: o.was}
		}
		g.first = append(g.first, first)
		g.del = append(g.del, nftables.SetElement{Key: el.Key})
		g.last = append(g.last, el)
	}
	for _, name := range pl.order {
		s, g := e.rs.set(name), pl.groups[name]
		for i, els := range [...][]nftables.SetElement{g.fresh, g.first, g.del, g.last} {
			if len(els) == 0 {
				continue
			}
			if err := put(s, i == 2, els); err != nil {
				return err
			}
		}
	}
	for _, o := range pl.rest {
		s := e.rs.set(o.set)
		el := nftables.SetElement{Key: []byte(o.key)}
		if o.add {
			el, ok := element(o.key, member{until: o.until, jump: o.jump}, now)
			if !ok {
				continue
			}
			first := el
			if o.was != "" {
				first.VerdictData = &expr.Verdict{Kind: expr.VerdictJump, Chain: o.was}
			}
			for i, els := range [][]nftables.SetElement{{first}, {{Key: el.Key}}, {el}} {
				if err := put(s, i == 1, els); err != nil {
					return err
				}
			}
			continue
		}
		if err := put(s, true, []nftables.SetElement{el}); err != nil {
			return err
		}
	}
	return nil
}

// planKeepOps bounds the plans whose working storage the enforcer keeps
// (planOps): a group commit's worth of bindings, not a rebuild's.
const planKeepOps = 1024

// opKey is a set and an element key, for planOps' count of ops per key.
type opKey struct{ set, key string }

// opCount is how many of a plan's ops touch a key, and whether planOps
// has met one yet.
type opCount struct {
	n    int
	seen bool
}

// setMsgs are a set's messages in a plan, in the order they go.
type setMsgs struct {
	fresh, first, del, last []nftables.SetElement
	planned                 bool // in the plan's order
}

// opPlan is planOps' working storage.
type opPlan struct {
	count  map[opKey]opCount
	groups map[string]*setMsgs
	order  []string // sets in first-seen order, for stable bytes
	rest   []op
	// keys holds the element keys' bytes, which the elements' Key slices
	// share (grown, if ever, to a new array: earlier slices keep the old).
	keys []byte
}

// reset readies pl for ops.
func (pl *opPlan) reset(ops []op) {
	if pl.count == nil {
		pl.count = make(map[opKey]opCount, len(ops))
		pl.groups = map[string]*setMsgs{}
	}
	n := 0
	for _, o := range ops {
		n += len(o.key)
	}
	if cap(pl.keys) < n {
		pl.keys = make([]byte, 0, 2*n)
	}
}

// done empties pl for the next plan, keeping its storage but nothing the
// plan referred to.
func (pl *opPlan) done() {
	clear(pl.count)
	for _, name := range pl.order {
		g := pl.groups[name]
		g.planned = false
		for _, els := range []*[]nftables.SetElement{&g.fresh, &g.first, &g.del, &g.last} {
			clear(*els)
			*els = (*els)[:0]
		}
	}
	clear(pl.order)
	pl.order = pl.order[:0]
	clear(pl.rest)
	pl.rest = pl.rest[:0]
	pl.keys = pl.keys[:0]
}

// group returns set's messages, adding the set to the plan's order.
func (pl *opPlan) group(set string) *setMsgs {
	g := pl.groups[set]
	if g == nil {
		g = &setMsgs{}
		pl.groups[set] = g
	}
	if !g.planned {
		g.planned = true
		pl.order = append(pl.order, set)
	}
	return g
}

// key returns k's bytes in the plan's storage.
func (pl *opPlan) key(k string) []byte {
	at := len(pl.keys)
	pl.keys = append(pl.keys, k...)
	return pl.keys[at:len(pl.keys):len(pl.keys)]
}

func (e *Enforcer) killFlows(ctx context.Context, ips ...netip.Addr) error {
	var errs error
	for _, ip := range ips {
		if !ip.IsValid() {
			continue
		}
		n, err := e.flows.KillFlows(ctx, ip)
		if err != nil {
			errs = errors.Join(errs, fmt.Errorf("policy: delete conntrack entries of %v: %w", ip, err))
			continue
		}
		if n > 0 {
			e.log.Info("connections cut", "ip", ip, "flows", n)
		}
	}
	return errs
}

// Admit lets a visitor's device (MAC and IPv4 both required) through the
// portal gate until the given time; the kernel drops the element then. The
// device gets its segment's defaults: any limits of its own (AdmitWith) go.
func (e *Enforcer) Admit(ctx context.Context, d Device, until time.Time) error {
	return e.AdmitWith(ctx, d, until, Limits{})
}

// Evict ends a visitor's admission, with its limits and quota, and cuts their
// open connections. Without an IP it ends every admission of the MAC,
// whatever address it had.
func (e *Enforcer) Evict(ctx context.Context, d Device) error {
	var ips []netip.Addr
	var opsOf func() []op
	if d.IP.IsValid() {
		k, err := admittedKey(d)
		if err != nil {
			return fmt.Errorf("policy: evict %v: %w", d, err)
		}
		ips = []netip.Addr{d.IP}
		opsOf = func() []op { return append([]op{{set: SetAdmitted, key: k}}, clearLimitOps(d.IP)...) }
	} else {
		m, err := macKey(d.MAC)
		if err != nil {
			return fmt.Errorf("policy: evict %v: %w", d, err)
		}
		opsOf = func() []op {
			var ops []op
			for k := range e.members[SetAdmitted] {
				if strings.HasPrefix(k, m) {
					ops = append(ops, op{set: SetAdmitted, key: k})
					ip, _ := netip.AddrFromSlice([]byte(k[8:]))
					ips = append(ips, ip)
				}
			}
			return append(ops, clearLimitOps(ips...)...)
		}
	}
	if err := e.changeFunc(ctx, "evict "+d.String(), opsOf); err != nil {
		return err
	}
	e.log.Info("evicted", "mac", d.MAC, "ips", ips)
	// The kernel already refuses the device's next packet (the portal
	// gate precedes established traffic); its conntrack entries go after.
	return e.killFlowsSoon(ctx, true, ips...)
}

// pairOps returns ops for a MAC set and an IP set, for whichever of d's fields
// is set.
func pairOps(d Device, macSet, ipSet string, add bool) ([]op, error) {
	var ops []op
	if d.MAC != nil {
		k, err := macKey(d.MAC)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op{set: macSet, key: k, add: add})
	}
	if d.IP.IsValid() {
		k, err := ipKey(d.IP)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op{set: ipSet, key: k, add: add})
	}
	if len(ops) == 0 {
		return nil, errors.New("need a MAC or an IP")
	}
	return ops, nil
}

// Quarantine lets a device (by MAC, IP or both) reach nothing but the router:
// its web traffic goes to the portal. Its open connections are cut.
func (e *Enforcer) Quarantine(ctx context.Context, d Device) error {
	ops, err := pairOps(d, SetQuarantineMAC, SetQuarantineIP, true)
	if err != nil {
		return fmt.Errorf("policy: quarantine %v: %w", d, err)
	}
	if err := e.change(ctx, "quarantine "+d.String(), ops); err != nil {
		return err
	}
	e.log.Info("quarantined", "mac", d.MAC, "ip", d.IP)
	return e.killFlows(ctx, d.IP)
}

// Release ends a quarantine.
func (e *Enforcer) Release(ctx context.Context, d Device) error {
	ops, err := pairOps(d, SetQuarantineMAC, SetQuarantineIP, false)
	if err != nil {
		return fmt.Errorf("policy: release %v: %w", d, err)
	}
	if err := e.change(ctx, "release "+d.String(), ops); err != nil {
		return err
	}
	e.log.Info("released", "mac", d.MAC, "ip", d.IP)
	return nil
}

// Approve lets a device's MAC through the approval gate of segments that
// require it.
func (e *Enforcer) Approve(ctx context.Context, d Device) error {
	k, err := macKey(d.MAC)
	if err != nil {
		return fmt.Errorf("policy: approve %v: %w", d, err)
	}
	if err := e.change(ctx, "approve "+d.String(), []op{{set: SetApproved, key: k, add: true}}); err != nil {
		return err
	}
	e.log.Info("approved", "mac", d.MAC)
	return nil
}

// Unapprove withdraws an approval and cuts the device's connections when its
// IP is given.
func (e *Enforcer) Unapprove(ctx context.Context, d Device) error {
	k, err := macKey(d.MAC)
	if err != nil {
		return fmt.Errorf("policy: unapprove %v: %w", d, err)
	}
	if err := e.change(ctx, "unapprove "+d.String(), []op{{set: SetApproved, key: k}}); err != nil {
		return err
	}
	e.log.Info("unapproved", "mac", d.MAC)
	return e.killFlows(ctx, d.IP)
}

// Revoke shuts out every device of a person who lost access (a leaver): they
// are refused everywhere, their approvals, admissions and limits go, and their
// open connections are cut. All of that is one kernel transaction; removing
// a quota's object and chain, which nothing reaches any more, follows it.
func (e *Enforcer) Revoke(ctx context.Context, devices ...Device) error {
	var ops []op
	var ips []netip.Addr
	for _, d := range devices {
		p, err := pairOps(d, SetRevokedMAC, SetRevokedIP, true)
		if err != nil {
			return fmt.Errorf("policy: revoke %v: %w", d, err)
		}
		ops = append(ops, p...)
		if d.MAC != nil {
			ops = append(ops, op{set: SetApproved, key: string(d.MAC)})
			if k, err := admittedKey(d); err == nil {
				ops = append(ops, op{set: SetAdmitted, key: k})
			}
		}
		ops = append(ops, clearLimitOps(d.IP)...)
		ips = append(ips, d.IP)
	}
	if err := e.change(ctx, fmt.Sprintf("revoke %d devices", len(devices)), ops); err != nil {
		return err
	}
	e.log.Info("revoked", "devices", len(devices))
	// Revoked devices are refused ahead of established traffic: the
	// kernel already drops them; their conntrack entries go after.
	return e.killFlowsSoon(ctx, false, ips...)
}

// Reinstate lifts a revocation (the devices are not re-approved).
func (e *Enforcer) Reinstate(ctx context.Context, devices ...Device) error {
	var ops []op
	for _, d := range devices {
		p, err := pairOps(d, SetRevokedMAC, SetRevokedIP, false)
		if err != nil {
			return fmt.Errorf("policy: reinstate %v: %w", d, err)
		}
		ops = append(ops, p...)
	}
	if err := e.change(ctx, fmt.Sprintf("reinstate %d devices", len(devices)), ops); err != nil {
		return err
	}
	e.log.Info("reinstated", "devices", len(devices))
	return nil
}

// Block refuses forwarding to an endpoint (a known DoH or VPN address) from
// every segment, at once for open connections too.
func (e *Enforcer) Block(ctx context.Context, endpoint netip.Addr) error {
	k, err := ipKey(endpoint)
	if err != nil {
		return fmt.Errorf("policy: block %v: %w", endpoint, err)
	}
	if err := e.change(ctx, "block "+endpoint.String(), []op{{set: SetBlocked, key: k, add: true}}); err != nil {
		return err
	}
	e.log.Info("endpoint blocked", "ip", endpoint)
	return nil
}

// Unblock lifts a Block.
func (e *Enforcer) Unblock(ctx context.Context, endpoint netip.Addr) error {
	k, err := ipKey(endpoint)
	if err != nil {
		return fmt.Errorf("policy: unblock %v: %w", endpoint, err)
	}
	if err := e.change(ctx, "unblock "+endpoint.String(), []op{{set: SetBlocked, key: k}}); err != nil {
		return err
	}
	e.log.Info("endpoint unblocked", "ip", endpoint)
	return nil
}

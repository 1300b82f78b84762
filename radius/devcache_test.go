package radius

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/store/storetest"
)

// The server holds devices in memory, and still sees at once what another
// process (here a second Open of the same file, as `gatehouse device
// approve` runs beside the daemon) approved, blocked or keyed.
func TestDeviceCacheSeesChangesFromAnotherProcess(t *testing.T) {
	ctx := context.Background()
	st, cli := storetest.OpenTwice(t)
	d := cachedDevices(StoreDevices{Store: st}, 0)
	c, ok := d.(*deviceCache)
	if !ok {
		t.Fatalf("StoreDevices over the store is %T, want the cache", d)
	}
	// Strict here: every lookup checks the log (the 5 ms default would
	// let this fast test see its own changes late, as intended).
	c.f.maxStale = 0
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x42}
	look := func(what string) DeviceInfo {
		t.Helper()
		info, err := c.Lookup(ctx, mac)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return info
	}
	if info := look("stranger"); info.Known || info.Approved {
		t.Fatalf("stranger: %+v", info)
	}
	if c.len() != 1 {
		t.Fatalf("cache holds %d devices after a lookup, want 1 (the stranger)", c.len())
	}
	look("stranger again") // from memory
	if err := cli.ApproveDevice(ctx, "cli", mac, "staff", "Laptop", now); err != nil {
		t.Fatal(err)
	}
	if info := look("approved"); !info.Approved || info.Segment != "staff" || info.Name != "Laptop" {
		t.Fatalf("after approval elsewhere: %+v", info)
	}
	if err := cli.SetDeviceKey(ctx, "cli", mac, []byte("sealed"), now); err != nil {
		t.Fatal(err)
	}
	if info := look("keyed"); string(info.SealedKey) != "sealed" {
		t.Fatalf("after a key elsewhere: %+v", info)
	}
	if err := cli.DecideDevice(ctx, "nm", mac, store.DeviceDecision{Approved: true, Blocked: true}, now); err != nil {
		t.Fatal(err)
	}
	if info := look("blocked"); !info.Blocked {
		t.Fatalf("after a block elsewhere: %+v", info)
	}
	// A change in this process's store is logged the same way.
	if err := st.DecideDevice(ctx, "nm", mac, store.DeviceDecision{Approved: true}, now); err != nil {
		t.Fatal(err)
	}
	if info := look("unblocked"); info.Blocked || !info.Approved {
		t.Fatalf("after unblocking: %+v", info)
	}
}

// MACs come from the network: the cache never holds more than its bound.
func TestDeviceCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	c := cachedDevices(StoreDevices{Store: st}, 8).(*deviceCache)
	for i := range 100 {
		if _, err := c.Lookup(ctx, net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if c.len() > 8 {
		t.Fatalf("cache holds %d devices, bound 8", c.len())
	}
}

// changingLog is a change log whose generation moves while a fill reads
// the store: the fill must not be kept.
type changingLog struct {
	mu  sync.Mutex
	gen int64
}

func (l *changingLog) LatestChange(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen, nil
}

func (l *changingLog) ChangesSince(_ context.Context, since int64, _ int) ([]string, int64, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return []string{"02:00:00:00:00:07"}, l.gen, false, nil
}

type slowDevices struct {
	read    chan struct{} // closed when a read began
	release chan struct{}
	info    DeviceInfo
}

func (d *slowDevices) Lookup(context.Context, net.HardwareAddr) (DeviceInfo, error) {
	close(d.read)
	<-d.release
	return d.info, nil
}

// A read that began before a change was applied (it may have read the row
// before the change committed) answers its own request but is not kept.
func TestDeviceCacheDiscardsAFillOverlappingAChange(t *testing.T) {
	ctx := context.Background()
	log := &changingLog{gen: 1}
	src := &slowDevices{read: make(chan struct{}), release: make(chan struct{}), info: DeviceInfo{Known: true, Approved: true}}
	c := newDeviceCache(src, log, 16, 0)
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 7}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := c.Lookup(ctx, mac); err != nil {
			t.Error(err)
		}
	}()
	<-src.read
	log.mu.Lock()
	log.gen = 2 // the device changed while the read ran
	log.mu.Unlock()
	if err := c.sync(ctx); err != nil { // another request sees the change
		t.Fatal(err)
	}
	close(src.release)
	<-done
	if c.len() != 0 {
		t.Fatalf("a fill that overlapped a change was kept")
	}
}

// With the default bound a lookup more than maxStale after a change sees
// it: a check covers only the lookups that arrive soon after it began.
func TestDeviceCacheSeesAChangeOnceItsCheckIsOlderThanTheBound(t *testing.T) {
	ctx := context.Background()
	st, cli := storetest.OpenTwice(t)
	c := cachedDevices(StoreDevices{Store: st}, 0).(*deviceCache)
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x43}
	if info, err := c.Lookup(ctx, mac); err != nil || info.Approved {
		t.Fatalf("stranger: %+v, %v", info, err)
	}
	if err := cli.ApproveDevice(ctx, "cli", mac, "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(c.f.maxStale + time.Millisecond)
	if info, err := c.Lookup(ctx, mac); err != nil || !info.Approved {
		t.Fatalf("%v after an approval elsewhere: %+v, %v; want approved", c.f.maxStale, info, err)
	}
}

// The read loop answers only MAB of a device held as approved; a stranger,
// EAP or accounting goes to a worker.
func TestAnswersInlineOnlyApprovedDevicesInMemory(t *testing.T) {
	cache := newDeviceCache(&fakeDevices{m: map[string]DeviceInfo{}}, &changingLog{}, 16, 0)
	cache.entries[macKey{2, 0, 0, 0, 0, 1}] = DeviceInfo{Known: true, Approved: true}
	cache.entries[macKey{2, 0, 0, 0, 0, 2}] = DeviceInfo{Known: true, Approved: true, Blocked: true}
	s := &Server{o: Options{Devices: cache}}
	packet := func(user string, eap bool) []byte {
		p := radius.New(radius.CodeAccessRequest, []byte("secret"))
		_ = rfc2865.UserName_SetString(p, user)
		if eap {
			p.Add(typeEAPMessage, radius.Attribute{2, 0, 0, 5, 1})
		}
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		what string
		pkt  []byte
		acct bool
		want bool
	}{
		{"approved device", packet("020000000001", false), false, true},
		{"approved device, dashed", packet("02-00-00-00-00-01", false), false, true},
		{"blocked device", packet("020000000002", false), false, false},
		{"stranger", packet("020000000003", false), false, false},
		{"a person", packet("user1", false), false, false},
		{"EAP", packet("020000000001", true), false, false},
		{"on the accounting port", packet("020000000001", false), true, false},
	} {
		if got := s.answersInline(c.acct, c.pkt); got != c.want {
			t.Errorf("%s: inline %v, want %v", c.what, got, c.want)
		}
	}
}

// gapLog is a change log that has moved past what it still holds (pruned,
// or a restored backup): every read since a position is a gap.
type gapLog struct{ gen int64 }

func (l *gapLog) LatestChange(context.Context) (int64, error) { return l.gen, nil }

func (l *gapLog) ChangesSince(context.Context, int64, int) ([]string, int64, bool, error) {
	return nil, l.gen, true, nil
}

// A gap in the change log empties the cache: it cannot know which devices
// changed, so every one is read again.
func TestDeviceCacheForgetsEverythingOnAGap(t *testing.T) {
	ctx := context.Background()
	src := &fakeDevices{m: map[string]DeviceInfo{}}
	log := &gapLog{gen: 1}
	c := newDeviceCache(src, log, 16, 0)
	for i := range 3 {
		if _, err := c.Lookup(ctx, net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if c.len() != 3 {
		t.Fatalf("cache holds %d devices, want 3", c.len())
	}
	src.set("02:00:00:00:00:01", DeviceInfo{Known: true, Approved: true})
	log.gen = 20000
	info, err := c.Lookup(ctx, net.HardwareAddr{2, 0, 0, 0, 0, 1})
	if err != nil || !info.Approved {
		t.Fatalf("after a gap: %+v, %v; want the store's approved device", info, err)
	}
	if c.len() != 1 {
		t.Fatalf("cache holds %d devices after a gap, want only the one read since", c.len())
	}
}

// A change this process's store commits is seen by the next lookup, even
// inside the check interval (here an hour).
func TestDeviceCacheSeesThisProcesssChangeAtOnce(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	c := cachedDevices(StoreDevices{Store: st}, 0).(*deviceCache)
	c.f.maxStale = time.Hour
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x44}
	if info, err := c.Lookup(ctx, mac); err != nil || info.Approved {
		t.Fatalf("stranger: %+v, %v", info, err)
	}
	if err := st.ApproveDevice(ctx, "nm", mac, "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if info, err := c.Lookup(ctx, mac); err != nil || !info.Approved {
		t.Fatalf("right after this process approved it: %+v, %v; want approved", info, err)
	}
}

// The cache starts with every approved device (up to its bound) read in
// one query, and still follows the change log for them: a device blocked
// by another process after the preload is seen blocked.
func TestDeviceCachePreloadsApprovedDevices(t *testing.T) {
	ctx := context.Background()
	st, cli := storetest.OpenTwice(t)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	mac := func(i byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 1, i} }
	for i := range byte(5) {
		if err := cli.ApproveDevice(ctx, "cli", mac(i), "staff", "Laptop", now); err != nil {
			t.Fatal(err)
		}
	}
	// Known but not approved, and approved then blocked: not preloaded.
	if err := cli.DecideDevice(ctx, "nm", mac(9), store.DeviceDecision{}, now); err != nil {
		t.Fatal(err)
	}
	if err := cli.DecideDevice(ctx, "nm", mac(4), store.DeviceDecision{Approved: true, Blocked: true}, now); err != nil {
		t.Fatal(err)
	}
	c := cachedDevices(StoreDevices{Store: st}, 3).(*deviceCache)
	c.f.maxStale = 0
	n, err := c.preload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || c.len() != 3 {
		t.Fatalf("preloaded %d, holds %d; want the bound, 3", n, c.len())
	}
	c = cachedDevices(StoreDevices{Store: st}, 0).(*deviceCache)
	c.f.maxStale = 0
	if n, err = c.preload(ctx); err != nil || n != 4 {
		t.Fatalf("preloaded %d (%v), want the 4 approved, unblocked devices", n, err)
	}
	for i := range byte(4) {
		if !c.approved(macKey(mac(i))) {
			t.Fatalf("device %d not held as approved after the preload", i)
		}
	}
	if c.approved(macKey(mac(4))) || c.approved(macKey(mac(9))) {
		t.Fatal("a blocked or unapproved device was preloaded as approved")
	}
	if info, ok := c.entries[macKey(mac(0))]; !ok || info.Segment != "staff" || info.Name != "Laptop" || !info.SealedKeyRead {
		t.Fatalf("preloaded entry %+v, want what Lookup reads", info)
	}
	if err := cli.DecideDevice(ctx, "nm", mac(1), store.DeviceDecision{Approved: true, Blocked: true}, now); err != nil {
		t.Fatal(err)
	}
	if info, err := c.Lookup(ctx, mac(1)); err != nil || !info.Blocked {
		t.Fatalf("after a block elsewhere: %+v, %v", info, err)
	}
}

// changeDuringBulk is a StoreDevices source whose bulk read overlaps a
// change that another request's check applies: the preload must not keep
// what it read.
type changeDuringBulk struct {
	DeviceRecords
	log   *changingLog
	cache **deviceCache
}

func (d changeDuringBulk) ApprovedDevicesForRADIUS(ctx context.Context, _ int) ([]store.ApprovedRADIUSDevice, error) {
	d.log.mu.Lock()
	d.log.gen++
	d.log.mu.Unlock()
	if err := (*d.cache).sync(ctx); err != nil {
		return nil, err
	}
	return []store.ApprovedRADIUSDevice{{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 7},
		DeviceForRADIUS: store.DeviceForRADIUS{Known: true, Approved: true}}}, nil
}

func TestDeviceCachePreloadDiscardsAReadOverlappingAChange(t *testing.T) {
	ctx := context.Background()
	log := &changingLog{gen: 1}
	var c *deviceCache
	c = newDeviceCache(StoreDevices{Store: changeDuringBulk{log: log, cache: &c}}, log, 16, 0)
	n, err := c.preload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || c.len() != 0 {
		t.Fatalf("kept %d devices read while a change was applied", c.len())
	}
}

// Over many changes by another process, each interleaved with lookups
// that keep the cache's checks busy (the change log's newest entry is read
// through the store's held connection and skipped while nothing was
// committed), every lookup that arrives more than maxStale after a commit
// sees it.
func TestDeviceCacheSeesEveryChangeFromAnotherProcessWithinTheBound(t *testing.T) {
	ctx := context.Background()
	st, cli := storetest.OpenTwice(t)
	c := cachedDevices(StoreDevices{Store: st}, 0).(*deviceCache)
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x44}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if err := cli.ApproveDevice(ctx, "cli", mac, "staff", "", now); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		blocked := i%2 == 0
		// Lookups right before the commit: the cache holds the old state.
		for range 50 {
			if _, err := c.Lookup(ctx, mac); err != nil {
				t.Fatal(err)
			}
		}
		if err := cli.DecideDevice(ctx, "nm", mac, store.DeviceDecision{Approved: true, Blocked: blocked}, now); err != nil {
			t.Fatal(err)
		}
		time.Sleep(c.f.maxStale + time.Millisecond)
		info, err := c.Lookup(ctx, mac)
		if err != nil || info.Blocked != blocked {
			t.Fatalf("change %d (blocked %v) by another process, %v later: %+v, %v", i, blocked, c.f.maxStale+time.Millisecond, info, err)
		}
	}
}

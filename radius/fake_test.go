package radius

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/gatehouse-net/gatehouse/alert/finding/findingtest"
	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

// fakeDevices is a devices table in memory.
type fakeDevices struct {
	mu    sync.Mutex
	m     map[string]DeviceInfo
	panic bool
}

func (f *fakeDevices) Lookup(_ context.Context, mac net.HardwareAddr) (DeviceInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panic {
		panic("fake devices told to panic")
	}
	return f.m[mac.String()], nil
}

func (f *fakeDevices) set(mac string, d DeviceInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, _ := net.ParseMAC(mac)
	d.Known = true
	f.m[m.String()] = d
}

// fakeIdentities is a directory of people in memory. Tests change it while
// the server's goroutines read it (a person revoked mid-test), so the map
// is behind a mutex.
type fakeIdentities struct {
	mu sync.Mutex
	m  map[string]Identity
}

func newFakeIdentities(m map[string]Identity) *fakeIdentities {
	if m == nil {
		m = map[string]Identity{}
	}
	return &fakeIdentities{m: m}
}

func (f *fakeIdentities) Lookup(_ context.Context, u string) (Identity, error) {
	id, ok := f.get(u)
	if !ok {
		return Identity{}, ErrNoIdentity
	}
	return id, nil
}

// get is u's identity as the directory holds it now.
func (f *fakeIdentities) get(u string) (Identity, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.m[u]
	return id, ok
}

// set gives u the identity id.
func (f *fakeIdentities) set(u string, id Identity) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[u] = id
}

// countingSessions counts the writes that reach the store.
type countingSessions struct {
	*store.Store
	writes atomic.Int64
}

func (c *countingSessions) RecordAccounting(ctx context.Context, u store.AccountingUpdate) (store.RADIUSSession, error) {
	c.writes.Add(1)
	return c.Store.RecordAccounting(ctx, u)
}

const testSecret = "s3cret-for-tests"

// rig is a server on loopback with fakes behind it.
type rig struct {
	srv      *Server
	devices  *fakeDevices
	ids      *fakeIdentities
	sessions *countingSessions
	hub      *events.Hub
	found    *findingtest.Collector
	st       *store.Store
	keys     *Keyring
}

var testSegments = []Segment{
	{Name: "staff", VLAN: 10, SSIDs: []string{"Staff"}, Unknown: policy.UnknownAlert},
	{Name: "pupil", VLAN: 20, SSIDs: []string{"Pupils"}, Unknown: policy.UnknownQuarantine},
	{Name: "byod", VLAN: 30, SSIDs: []string{"BYOD"}, Unknown: policy.UnknownAllow},
	{Name: "visitor", VLAN: 40, SSIDs: []string{"Guest"}, Unknown: policy.UnknownAllow, Portal: true},
	{Name: "lab", VLAN: 50, SSIDs: []string{"Lab"}, Unknown: policy.UnknownDeny},
}

func newRig(t testing.TB, mod func(*Options)) *rig {
	t.Helper()
	return newRigWith(t, mod, func(srv *Server) error { return srv.Listen() })
}

// newRigWith lets the caller bind the sockets (in a namespace).
func newRigWith(t testing.TB, mod func(*Options), listen func(*Server) error) *rig {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &rig{devices: &fakeDevices{m: map[string]DeviceInfo{}}, ids: newFakeIdentities(nil), sessions: &countingSessions{Store: st}, hub: events.New(), found: &findingtest.Collector{}, st: st}
	siteKey := make([]byte, 32)
	siteKey[0] = 7
	if r.keys, err = NewKeyring(siteKey, st, testSSIDs(), nil); err != nil {
		t.Fatal(err)
	}
	o := Options{
		AuthAddr: "127.0.0.1:0", AcctAddr: "127.0.0.1:0",
		Clients: []Client{
			{Name: "aps", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(testSecret), RequireMessageAuthenticator: true},
		},
		Segments: testSegments, Devices: r.devices, Identities: r.ids, Sessions: r.sessions, Keys: r.keys, Events: r.hub, Findings: r.found,
		Auditor: st, RejectDelay: -1,
	}
	if mod != nil {
		mod(&o)
	}
	if _, ok := o.PMKKeys.(rigStoreKeys); ok {
		o.PMKKeys = st
	}
	if _, ok := o.Devices.(rigStoreDevices); ok {
		o.Devices = StoreDevices{Store: st}
	}
	r.srv, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := listen(r.srv); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// signRequest encodes an Access-Request or Status-Server, with a
// Message-Authenticator unless without.
func signRequest(t testing.TB, p *radius.Packet, without bool) []byte {
	t.Helper()
	if !without {
		p.Attributes = append(radius.Attributes{{Type: typeMsgAut, Attribute: make(radius.Attribute, 16)}}, p.Attributes...)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !without {
		copy(b[22:38], messageAuthenticator(b, 22, p.Secret, nil))
	}
	return b
}

// exchange sends b to addr and returns the answer, or nil after wait.
func exchange(t *testing.T, addr netip.AddrPort, b []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return sendOn(t, c, b, wait)
}

func sendOn(t *testing.T, c *net.UDPConn, b []byte, wait time.Duration) []byte {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func mabRequest(secret, mac, called string) *radius.Packet {
	p := radius.New(radius.CodeAccessRequest, []byte(secret))
	_ = rfc2865.UserName_SetString(p, mac)
	_ = rfc2865.UserPassword_SetString(p, mac)
	_ = rfc2865.CallingStationID_SetString(p, mac)
	if called != "" {
		_ = rfc2865.CalledStationID_SetString(p, called)
	}
	return p
}

// checkReply verifies the reply's authenticator and that its first
// attribute is a valid Message-Authenticator, and parses it.
func checkReply(t *testing.T, req, resp []byte, secret string) *radius.Packet {
	t.Helper()
	if resp == nil {
		t.Fatal("no answer")
	}
	if !radius.IsAuthenticResponse(resp, req, []byte(secret)) {
		t.Fatal("the Response Authenticator is wrong")
	}
	if len(resp) < 38 || resp[20] != typeMsgAut || resp[21] != 18 {
		t.Fatalf("the first attribute is not Message-Authenticator: % x", resp[20:min(len(resp), 24)])
	}
	h := hmac.New(md5.New, []byte(secret))
	cp := append([]byte(nil), resp...)
	copy(cp[4:20], req[4:20])
	copy(cp[22:38], make([]byte, 16))
	h.Write(cp)
	if !hmac.Equal(h.Sum(nil), resp[22:38]) {
		t.Fatal("the Message-Authenticator is wrong")
	}
	p, err := radius.Parse(resp, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testSSIDs are the SSIDs of testSegments, as the daemon gives its Keyring.
func testSSIDs() []string {
	var out []string
	for _, s := range testSegments {
		out = append(out, s.SSIDs...)
	}
	return out
}

// rigStoreKeys in Options.PMKKeys asks newRig for its own store, which
// does not exist yet when the options are modified.
type rigStoreKeys struct{ KeySource }

package radius

import (
	"context"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"time"
)

// rigStoreDevices in Options.Devices makes newRigWith use StoreDevices
// over the rig's store, held in memory as the daemon holds it.
type rigStoreDevices struct{ Devices }

// BenchmarkInlineMAB is the read loop's work for one MAC authentication
// of an approved device held in memory, as bench/radius.sh loads it: the
// client check, framing, the duplicate cache, the decision, the reply's
// encoding and HMACs and its sendto (to a socket that never reads), each
// request distinct. -benchmem shows what a request allocates.
func BenchmarkInlineMAB(b *testing.B) {
	r := newRig(b, func(o *Options) {
		o.Devices = rigStoreDevices{}
		// Every request is distinct and all arrive within the duplicate
		// window: room for b.N of them, or the cache's bound (a full
		// cache drops, as under a real flood) decides the result.
		o.MaxDuplicates = max(o.MaxDuplicates, b.N+1)
	})
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	if err := r.st.ApproveDevice(context.Background(), "bench", mac, "pupil", "bench device", time.Now()); err != nil {
		b.Fatal(err)
	}
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	src := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	req := signRequest(b, mabRequest(testSecret, "020000000001", "0A-00-00-00-00-01:Pupils"), false)
	ctx := context.Background()
	r.srv.receive(ctx, r.srv.authConn, false, append([]byte(nil), req...), src) // a worker fills the device cache
	for deadline := time.Now().Add(wait); !r.srv.answersInline(false, req); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the approved device is not answered inline")
		}
	}
	// A distinct request each time, as radclient's are: another
	// identifier and authenticator (so another User-Password encryption
	// and Message-Authenticator).
	reqs := make([][]byte, b.N)
	for i := range reqs {
		p := mabRequest(testSecret, "020000000001", "0A-00-00-00-00-01:Pupils")
		p.Identifier = byte(i) // radius.New drew a random authenticator
		reqs[i] = signRequest(b, p, false)
	}
	pkt := make([]byte, 0, maxPacket)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		pkt = append(pkt[:0], reqs[i]...) // the read loop's buffer
		r.srv.receive(ctx, r.srv.authConn, false, pkt, src)
	}
	b.StopTimer()
	if got := r.srv.metrics.responses.WithLabelValues("aps", "Access-Accept"); testutil.ToFloat64(got) < float64(b.N) {
		b.Fatalf("%v Access-Accepts for %d requests; rejects %v, overload drops %v", testutil.ToFloat64(got), b.N, testutil.ToFloat64(r.srv.metrics.responses.WithLabelValues("aps", "Access-Reject")), testutil.ToFloat64(r.srv.metrics.drops.WithLabelValues("aps", dropOverload)))
	}
}

// BenchmarkMessageAuthenticator is one Message-Authenticator over a MAB
// request's size with one client's secret, as every request checks one
// and every reply carries one.
func BenchmarkMessageAuthenticator(b *testing.B) {
	pkt := make([]byte, 110)
	pkt[headerLen], pkt[headerLen+1] = typeMsgAut, msgAutLen
	secret := []byte(testSecret)
	var out [16]byte
	b.ReportAllocs()
	for b.Loop() {
		messageAuthenticatorTo(out[:], pkt, headerLen+2, secret, nil)
	}
}

// BenchmarkDupCache is the duplicate cache in its steady state under
// load: distinct requests at 20,000 a second, each begun and completed,
// the oldest expiring as new ones arrive (100,000 held in the window).
func BenchmarkDupCache(b *testing.B) {
	c := newDupCache(5*time.Second, 1<<17)
	keys := make([]dupKey, 1<<16)
	for i := range keys {
		keys[i] = dupKeyN(i)
		keys[i].port = uint16(i) // dupKeyN varies only 16 bits
	}
	reply := make([]byte, 64)
	now := time.Unix(1000, 0)
	for i := range 200000 { // fill the window
		k := keys[i&(len(keys)-1)]
		k.id = byte(i >> 16)
		now = now.Add(50 * time.Microsecond)
		c.begin(k, now)
		c.complete(k, reply, now)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i&(len(keys)-1)]
		k.id = byte(i>>16) + 7
		i++
		now = now.Add(50 * time.Microsecond)
		if st, _ := c.begin(k, now); st != dupNew {
			b.Fatalf("request %d: %v", i, st)
		}
		c.complete(k, reply, now)
	}
}

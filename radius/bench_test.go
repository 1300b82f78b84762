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

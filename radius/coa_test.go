package radius

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc3576"

	"github.com/gatehouse-net/gatehouse/store"
)

// Moving a device to another segment sends a CoA-Request with that
// segment's VLAN; a session the NAS does not move (NAK, silence) is ended
// with a Disconnect-Request instead, and a segment that has no VLAN to
// name is reached by disconnecting at once. MACReauthorizer fails only when
// a session was neither moved nor ended.
func TestMoveToSegmentFallsBackToDisconnect(t *testing.T) {
	nak := func(p *radius.Packet) *radius.Packet {
		q := p.Response(radius.CodeCoANAK)
		_ = rfc3576.ErrorCause_Set(q, rfc3576.ErrorCause_Value_UnsupportedAttribute)
		return q
	}
	for _, tc := range []struct {
		name    string
		segment string
		answer  func(*radius.Packet) *radius.Packet
		want    []string // kind:outcome, in order sent
		fails   bool
	}{
		{"coa-ack", "byod", func(p *radius.Packet) *radius.Packet { return p.Response(radius.CodeCoAACK) }, []string{"coa:ack"}, false},
		{"coa-nak-then-disconnect", "byod", func(p *radius.Packet) *radius.Packet {
			if p.Code == radius.CodeDisconnectRequest {
				return p.Response(radius.CodeDisconnectACK)
			}
			return nak(p)
		}, []string{"coa:nak", "disconnect:ack"}, false},
		{"refuses-both", "byod", func(p *radius.Packet) *radius.Packet {
			if p.Code == radius.CodeDisconnectRequest {
				return p.Response(radius.CodeDisconnectNAK)
			}
			return nak(p)
		}, []string{"coa:nak", "disconnect:nak"}, true},
		{"ssid-decides", "", func(p *radius.Packet) *radius.Packet { return p.Response(radius.CodeDisconnectACK) }, []string{"disconnect:ack"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, got := fakeNAS(t, tc.answer)
			r := newRig(t, func(o *Options) {
				o.Clients[0].CoAPort = port
				// Every case's NAS answers: one try with a long wait,
				// so a reply slowed by a loaded machine is still the
				// answer (not a timeout, nor a retransmission seen as
				// another request).
				o.CoATimeouts = []time.Duration{10 * time.Second}
			})
			mac := mustMAC("02:00:00:00:00:03")
			if _, err := r.st.RecordAccounting(context.Background(), store.AccountingUpdate{Status: store.AcctStart, NAS: "aps",
				NASAddr: netip.MustParseAddr("127.0.0.1"), AcctSessionID: "S11", MAC: mac, At: time.Now()}); err != nil {
				t.Fatal(err)
			}
			err := MACReauthorizer{Server: r.srv, Actor: "people"}.MoveSegment(context.Background(), mac, tc.segment)
			if (err != nil) != tc.fails {
				t.Fatalf("MoveSegment: %v", err)
			}
			var sent []string
			for range tc.want {
				var req *radius.Packet
				select {
				case req = <-got:
				default:
					// MoveSegment has returned: every request it sent
					// is here.
					t.Fatalf("sent %v, want %v", sent, tc.want)
				}
				kind := "coa"
				if req.Code == radius.CodeDisconnectRequest {
					kind = "disconnect"
				} else if v := req.Get(81); string(v) != "30" {
					t.Fatalf("CoA names VLAN %q, want byod's 30", v)
				}
				sent = append(sent, kind)
			}
			select {
			case req := <-got:
				t.Fatalf("also sent %v after %v", req.Code, sent)
			default:
			}
			nas := r.srv.NAS()[0]
			if len(nas.LastCoA) != len(tc.want) {
				t.Fatalf("NAS book %+v", nas.LastCoA)
			}
			for i, w := range tc.want {
				res := nas.LastCoA[len(tc.want)-1-i]
				if res.Kind+":"+res.Outcome != w || sent[i] != res.Kind {
					t.Fatalf("request %d: sent %s, recorded %s:%s; want %s", i, sent[i], res.Kind, res.Outcome, w)
				}
			}
		})
	}
	r := newRig(t, nil)
	if _, err := r.srv.MoveToSegment(context.Background(), "people", mustMAC("02:00:00:00:00:03"), "no-such-segment"); err == nil {
		t.Fatal("a move to an unknown segment was sent")
	}
}

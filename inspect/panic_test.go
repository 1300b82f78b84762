package inspect

import (
	"net"
	"testing"
)

// TestAPanickingPacketIsSkippedAndInspectionGoesOn: a bug one packet reaches
// (here a KnownDevice lookup that panics for one MAC, as a fuzzer might find
// in a parser) skips that packet, is counted and reported, and the next
// packets are inspected as before.
func TestAPanickingPacketIsSkippedAndInspectionGoesOn(t *testing.T) {
	bad := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x66}
	var got []Finding
	var reported [][]byte
	known := func(mac net.HardwareAddr) (bool, error) {
		if mac.String() == bad.String() {
			panic("injected: lookup of " + mac.String())
		}
		return false, nil
	}
	e := collect(Options{InsideSubnets: school, KnownDevice: known, OnPanic: func(v any, p []byte) { reported = append(reported, p) }}, &got)
	b := frame(t, pktSpec{srcMAC: bad, src: pupil, dst: server, udp: true, sport: 30000, dport: 9999, payload: []byte("x")})
	e.HandlePacket(b, ci(t0, len(b)))
	if e.Stats().Panics != 1 || len(reported) != 1 || string(reported[0]) != string(b) {
		t.Fatalf("panics %d, reported %d packets; want 1 and the packet itself", e.Stats().Panics, len(reported))
	}
	stranger := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	b = frame(t, pktSpec{srcMAC: stranger, src: pupil, dst: server, udp: true, sport: 30001, dport: 9999, payload: []byte("x")})
	e.HandlePacket(b, ci(t0, len(b)))
	if len(got) != 1 || got[0].Class != ClassUnapprovedDevice {
		t.Errorf("after the panic, findings = %v, want the stranger's unapproved-device", got)
	}
}

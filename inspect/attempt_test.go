package inspect

import (
	"strings"
	"testing"
	"time"
)

// sendAt sends one packet of the pupil↔server conversation at t0+at.
func sendAt(t *testing.T, e *Engine, at time.Duration, fromClient, udp bool, dport uint16, flags string, seq uint32, payload []byte) {
	t.Helper()
	s := pktSpec{src: pupil, dst: server, sport: 45000, dport: dport, udp: udp, seq: seq, payload: payload}
	if !fromClient {
		s = pktSpec{src: server, dst: pupil, sport: dport, dport: 45000, udp: udp, seq: seq, payload: payload, srcMAC: macRouter, dstMAC: macClient}
	}
	s.syn = strings.Contains(flags, "S")
	s.ack = strings.Contains(flags, "A")
	s.rst = strings.Contains(flags, "R")
	b := frame(t, s)
	e.HandlePacket(b, ci(t0.Add(at), len(b)))
}

func oneFinding(t *testing.T, got []Finding, class, detail string, conf Confidence) {
	t.Helper()
	if len(got) != 1 || got[0].Class != class || got[0].Detail != detail || got[0].Confidence != conf {
		t.Fatalf("findings = %v, want one %s/%s at confidence %s", got, class, detail, conf)
	}
}

func TestAttemptsFromTheClientSideAlone(t *testing.T) {
	csid := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	ssid := []byte{9, 9, 9, 9, 9, 9, 9, 9}

	t.Run("openvpn udp retries unanswered", func(t *testing.T) {
		var got []Finding
		e := collect(Options{}, &got)
		sendAt(t, e, 0, true, true, 1194, "", 0, ovpnClientReset(csid))
		if len(got) != 0 {
			t.Fatalf("one reset alone: %v", got)
		}
		sendAt(t, e, 2*time.Second, true, true, 1194, "", 0, ovpnClientReset(csid))
		oneFinding(t, got, ClassVPN, "openvpn", Attempt)
		if !strings.HasPrefix(got[0].Evidence, "attempt: ") {
			t.Errorf("evidence %q", got[0].Evidence)
		}
	})
	t.Run("openvpn udp answered is certain", func(t *testing.T) {
		var got []Finding
		e := collect(Options{}, &got)
		sendAt(t, e, 0, true, true, 1194, "", 0, ovpnClientReset(csid))
		sendAt(t, e, time.Millisecond, false, true, 1194, "", 0, ovpnServerReset(ssid, csid))
		oneFinding(t, got, ClassVPN, "openvpn", Certain)
	})
	t.Run("one lone reset-shaped datagram is nothing", func(t *testing.T) {
		var got []Finding
		e := collect(Options{}, &got)
		sendAt(t, e, 0, true, true, 1194, "", 0, ovpnClientReset(csid))
		e.flushAttempts()
		if len(got) != 0 {
			t.Fatalf("findings = %v", got)
		}
	})
	t.Run("wireguard initiations unanswered", func(t *testing.T) {
		var got []Finding
		e := collect(Options{}, &got)
		sendAt(t, e, 0, true, true, 51820, "", 0, wgInit())
		sendAt(t, e, 5*time.Second, true, true, 51820, "", 0, wgInit())
		oneFinding(t, got, ClassVPN, "wireguard", Attempt)
	})
	t.Run("socks5 greeting to a silent server, then the flow ends", func(t *testing.T) {
		var got []Finding
		e := collect(Options{}, &got)
		sendAt(t, e, 0, true, false, 1080, "S", 100, nil)
		sendAt(t, e, time.Millisecond, false, false, 1080, "SA", 500, nil)
		sendAt(t, e, 2*time.Millisecond, true, false, 1080, "A", 101, []byte{5, 2, 0, 2})
		if len(got) != 0 {
			t.Fatalf("before silence: %v", got)
		}
		e.flushAttempts()
		oneFinding(t, got, ClassProxy, "socks5", Attempt)
	})
	t.Run("SYN to the DoT port refused", func(t *testing.T) {
		var got []Finding
		e := collect(Options{}, &got)
		sendAt(t, e, 0, true, false, 853, "S", 100, nil)
		sendAt(t, e, time.Millisecond, false, false, 853, "RA", 0, nil)
		oneFinding(t, got, ClassDoT, "dot", Attempt)
	})
	t.Run("SYN to the DoT port answered leaves it to the detectors", func(t *testing.T) {
		var got []Finding
		e := collect(Options{}, &got)
		sendAt(t, e, 0, true, false, 853, "S", 100, nil)
		sendAt(t, e, time.Millisecond, false, false, 853, "SA", 500, nil)
		sendAt(t, e, 10*time.Second, true, false, 853, "A", 101, nil)
		e.flushAttempts()
		if len(got) != 0 {
			t.Fatalf("findings = %v", got)
		}
	})
	t.Run("thresholds drop weaker findings", func(t *testing.T) {
		var got []Finding
		e := collect(Options{MinConfidence: map[string]Confidence{ClassVPN: Likely}}, &got)
		sendAt(t, e, 0, true, true, 1194, "", 0, ovpnClientReset(csid))
		sendAt(t, e, 2*time.Second, true, true, 1194, "", 0, ovpnClientReset(csid))
		if len(got) != 0 || e.Stats().BelowThreshold != 1 {
			t.Fatalf("findings = %v, stats %+v", got, e.Stats())
		}
	})
}

func TestCheckMinConfidence(t *testing.T) {
	if err := CheckMinConfidence(map[string]Confidence{"vpn": Likely, "default": Attempt}); err != nil {
		t.Error(err)
	}
	if err := CheckMinConfidence(map[string]Confidence{"vpnn": Likely}); err == nil || !strings.Contains(err.Error(), "vpnn") {
		t.Errorf("unknown class: %v", err)
	}
	if _, err := ParseConfidence("sure"); err == nil {
		t.Error("ParseConfidence(sure) accepted")
	}
}

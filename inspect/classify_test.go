package inspect

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// conv is one side's payload in a conversation between pupil and server.
type conv struct {
	fromClient bool
	payload    []byte
}

// play sends a conversation over UDP or over TCP (with a handshake) and
// returns the findings.
func play(t *testing.T, udp bool, dport uint16, msgs []conv) []Finding {
	t.Helper()
	var got []Finding
	playOn(t, collect(Options{}, &got), udp, dport, msgs)
	return got
}

// playOn sends a conversation through e, every packet stamped t0+1ms.
func playOn(t *testing.T, e *Engine, udp bool, dport uint16, msgs []conv) {
	t.Helper()
	const sport = 45000
	cseq, sseq := uint32(1000), uint32(9000)
	send := func(fromClient bool, syn, ack bool, payload []byte) {
		s := pktSpec{src: pupil, dst: server, sport: sport, dport: dport, udp: udp, syn: syn, ack: ack, payload: payload}
		if !fromClient {
			s = pktSpec{src: server, dst: pupil, sport: dport, dport: sport, udp: udp, syn: syn, ack: ack, payload: payload, srcMAC: macRouter, dstMAC: macClient}
		}
		if fromClient {
			s.seq = cseq
			cseq += uint32(len(payload))
		} else {
			s.seq = sseq
			sseq += uint32(len(payload))
		}
		b := frame(t, s)
		e.HandlePacket(b, ci(t0.Add(time.Millisecond), len(b)))
	}
	if !udp {
		send(true, true, false, nil)
		cseq++
		send(false, true, true, nil)
		sseq++
		send(true, false, true, nil)
	}
	for _, m := range msgs {
		send(m.fromClient, false, !udp, m.payload)
	}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func wgInit() []byte {
	b := make([]byte, 148)
	b[0] = 1
	binary.LittleEndian.PutUint32(b[4:], 0x11223344)
	copy(b[8:], randomBytes(140, 1))
	return b
}

func wgResp() []byte {
	b := make([]byte, 92)
	b[0] = 2
	binary.LittleEndian.PutUint32(b[4:], 0x55667788)
	binary.LittleEndian.PutUint32(b[8:], 0x11223344)
	copy(b[12:], randomBytes(80, 2))
	return b
}

func ovpnClientReset(sid []byte) []byte {
	return append(append([]byte{7 << 3}, sid...), 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

func ovpnServerReset(sid, ack []byte) []byte {
	b := append([]byte{8 << 3}, sid...)
	b = append(b, 1)
	b = append(b, 0, 0, 0, 0)
	b = append(b, ack...)
	return append(b, 0, 0, 0, 0)
}

func withLen(b []byte) []byte {
	return append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)
}

func TestClassifiersOnSyntheticConversations(t *testing.T) {
	csid, ssid := []byte("\x01\x02\x03\x04\x05\x06\x07\x08"), []byte("\x11\x12\x13\x14\x15\x16\x17\x18")
	text := bytes.Repeat([]byte("plain text protocol line\n"), 60)
	for _, tc := range []struct {
		name          string
		udp           bool
		port          uint16
		msgs          []conv
		class, detail string // "" = no finding
	}{
		{"wireguard handshake", true, 51820, []conv{{true, wgInit()}, {false, wgResp()}}, ClassVPN, "wireguard"},
		{"wireguard initiation alone", true, 51820, []conv{{true, wgInit()}}, "", ""},
		{"openvpn udp", true, 1194, []conv{{true, ovpnClientReset(csid)}, {false, ovpnServerReset(ssid, csid)}}, ClassVPN, "openvpn"},
		{"openvpn udp wrong ack", true, 1194, []conv{{true, ovpnClientReset(csid)}, {false, ovpnServerReset(ssid, ssid)}}, "", ""},
		{"openvpn tcp on 443", false, 443, []conv{{true, withLen(ovpnClientReset(csid))}, {false, withLen(ovpnServerReset(ssid, csid))}}, ClassVPN, "openvpn"},
		{"tinc", false, 655, []conv{{true, []byte("0 pupil_laptop 17.7\n")}, {false, []byte("0 home 17.7\n")}}, ClassVPN, "tinc"},
		{"http connect", false, 3128, []conv{{true, []byte("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")}, {false, []byte("HTTP/1.1 200 Connection established\r\n\r\n")}}, ClassProxy, "http-connect"},
		{"haproxy PROXY protocol is not a proxy bypass", false, 8080, []conv{{true, []byte("PROXY TCP4 10.20.0.5 203.0.113.7 45000 8080\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")}}, "", ""},
		{"ordinary request to 8080", false, 8080, []conv{{true, []byte("GET /index.html HTTP/1.1\r\nHost: example.com:8080\r\n\r\n")}}, "", ""},
		{"socks5", false, 1080, []conv{{true, []byte{5, 1, 0}}, {false, []byte{5, 0}}}, ClassProxy, "socks5"},
		{"socks4", false, 1080, []conv{{true, []byte{4, 1, 0, 80, 93, 184, 216, 34, 0}}, {false, []byte{0, 0x5a, 0, 0, 0, 0, 0, 0}}}, ClassProxy, "socks4"},
		{"vnc", false, 5900, []conv{{false, []byte("RFB 003.008\n")}}, ClassRemoteAccess, "vnc"},
		{"rdp", false, 3389, []conv{{true, []byte("\x03\x00\x00\x2b\x26\xe0\x00\x00\x00\x00\x00Cookie: mstshash=pupil\r\n\x01\x00\x08\x00\x03\x00\x00\x00")}}, ClassRemoteAccess, "rdp"},
		{"fully encrypted stream", false, 8388, []conv{{true, randomBytes(300, 3)}, {false, randomBytes(1400, 4)}}, ClassProxy, "encrypted-stream"},
		{"text both ways is not encrypted", false, 8388, []conv{{true, text[:300]}, {false, text}}, "", ""},
		{"teredo", true, 3544, []conv{{true, append([]byte{0x60, 0, 0, 0, 0, 8, 17, 64}, make([]byte, 40)...)}}, ClassTunnel, "teredo"},
		{"anyconnect tunnel request in clear", false, 443, []conv{{true, []byte("CONNECT /CSCOSSLC/tunnel HTTP/1.1\r\nHost: vpn.example.net\r\nX-CSTP-Version: 1\r\n\r\n")}}, ClassVPN, "cisco-anyconnect"},
		{"fortigate ssl-vpn login in clear", false, 10443, []conv{{true, []byte("POST /remote/logincheck HTTP/1.1\r\nHost: fw.example.net\r\n\r\n")}}, ClassVPN, "fortinet-sslvpn"},
		{"random datagrams both ways", true, 8388, []conv{{true, randomBytes(120, 11)}, {true, randomBytes(90, 12)}, {false, randomBytes(140, 13)}}, ClassProxy, "encrypted-datagrams"},
		{"rtp-like datagrams with a repeated header", true, 40000, []conv{{true, append([]byte{0x80, 0x6f, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef}, randomBytes(160, 14)...)},
			{true, append([]byte{0x80, 0x6f, 0, 2, 0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef}, randomBytes(160, 15)...)}, {false, randomBytes(160, 16)}}, "", ""},
		{"dnscrypt answer", true, 443, []conv{{true, randomBytes(256, 5)}, {false, append([]byte("r6fnvWj8"), randomBytes(200, 6)...)}}, ClassDoH, "dnscrypt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := play(t, tc.udp, tc.port, tc.msgs)
			if tc.class == "" {
				if len(got) != 0 {
					t.Errorf("findings = %v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Class != tc.class || got[0].Detail != tc.detail {
				t.Fatalf("findings = %v, want one %s/%s", got, tc.class, tc.detail)
			}
			if got[0].SrcIP != pupil || got[0].DstIP != server || got[0].DstPort != tc.port {
				t.Errorf("finding endpoints = %s -> %s:%d", got[0].SrcIP, got[0].DstIP, got[0].DstPort)
			}
		})
	}
}

func TestWireGuardTransportCounters(t *testing.T) {
	data := func(idx uint32, ctr uint64) []byte {
		b := make([]byte, 32+64)
		b[0] = 4
		binary.LittleEndian.PutUint32(b[4:], idx)
		binary.LittleEndian.PutUint64(b[8:], ctr)
		copy(b[16:], randomBytes(80, ctr))
		return b
	}
	var counting, random []conv
	for i := uint64(0); i < 6; i++ {
		counting = append(counting, conv{i%2 == 0, data(0xaabbccdd+uint32(i%2), 40+i)})
		random = append(random, conv{i%2 == 0, data(uint32(i)*7919, i*1000003)})
	}
	if got := play(t, true, 5060, counting); len(got) != 1 || got[0].Detail != "wireguard" {
		t.Errorf("counting transport data: %v", got)
	}
	if got := play(t, true, 5060, random); len(got) != 0 {
		t.Errorf("type-4-looking packets with random counters: %v", got)
	}
}

func TestDNSTunnelHeuristics(t *testing.T) {
	tr := newDNSTunnelTracker(16)
	if ev := tr.query("h4sicn03k2qaa3rlc3qudhh0aavjycxwakjhmzqxnjy0yjm0y2q4ndblzjk1zme5.exfil.example", 1); ev == "" {
		t.Error("one long encoded label should be enough")
	}
	for _, n := range []string{"www.google.com", "a1.cdn.example.net", "_dmarc.example.org", "www.verylongbutordinaryhostnameforatest.example.com"} {
		if ev := tr.query(n, 1); ev != "" {
			t.Errorf("%s: %s", n, ev)
		}
	}
	ev := ""
	for i := 0; ev == "" && i < 20; i++ {
		ev = tr.query(string(rune('a'+i))+"x9k2mq7zt4v.t.pirate.sea", 10)
	}
	if ev == "" {
		t.Error("many NULL queries for distinct subdomains should be a tunnel")
	}
}

func TestTorLikeSNI(t *testing.T) {
	for name, want := range map[string]bool{
		"www.q4cyamnc6mtokjurvdclt.com": true,
		"www.jmts2id.com":               false, // too short to call random
		"www.6gyip7tqim7sieb.com":       true,
		"www.wikipedia.org":             false,
		"www.examplewebsite.com":        false,
		"www.bbc.co.uk":                 false,
	} {
		if got := torLikeSNI(name); got != want {
			t.Errorf("torLikeSNI(%q) = %v, want %v", name, got, want)
		}
	}
}

// splitRegistered cuts names as splitting them into labels and joining
// them again does.
func TestSplitRegisteredAsLabels(t *testing.T) {
	byLabels := func(name string) (string, string) {
		labels := strings.Split(name, ".")
		n := 2
		if len(labels) >= 3 && len(labels[len(labels)-2]) <= 3 && len(labels[len(labels)-1]) == 2 {
			n = 3
		}
		if len(labels) <= n {
			return name, ""
		}
		return strings.Join(labels[len(labels)-n:], "."), strings.Join(labels[:len(labels)-n], ".")
	}
	for _, name := range []string{"", ".", "a", "a.b", "a.b.c", "www.bbc.co.uk", "bbc.co.uk", "x.y.bbc.co.uk", "a..b", "..", "a.b.",
		"t.example.com", "deep.sub.example.com", "co.uk", "x.com.au", "abcd.co.uk", "a.b.cd", "a.bcd.ef.gh", ".co.uk"} {
		d, s := splitRegistered(name)
		wd, ws := byLabels(name)
		if d != wd || s != ws {
			t.Errorf("splitRegistered(%q) = %q, %q; want %q, %q", name, d, s, wd, ws)
		}
	}
}

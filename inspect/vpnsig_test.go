package inspect

import (
	"encoding/binary"
	"testing"
)

var (
	ztClient = [5]byte{0x8a, 0x1b, 0x2c, 0x3d, 0x4e}
	ztRoot   = [5]byte{0x62, 0xf8, 0x65, 0xae, 0x71}
)

// ztPacket builds a ZeroTier packet header from src to dst with the given
// flags byte and verb, followed by payload.
func ztPacket(dst, src [5]byte, flags, verb byte, payload []byte, seed uint64) []byte {
	b := make([]byte, 0, 28+len(payload))
	b = append(b, randomBytes(8, seed)...) // packet ID
	b = append(b, dst[:]...)
	b = append(b, src[:]...)
	b = append(b, flags)
	b = append(b, randomBytes(8, seed+1)...) // MAC
	b = append(b, verb)
	return append(b, payload...)
}

// ztHello is the HELLO a ZeroTier node sends a root: version fields, a
// timestamp, its identity (address, type 0, public key, no private key)
// and the root's physical address.
func ztHello(src [5]byte, idAddr [5]byte) []byte {
	p := []byte{11, 1, 12, 0, 4}                 // protocol 11, version 1.12.4
	p = binary.BigEndian.AppendUint64(p, 1.7e12) // timestamp in ms
	p = append(p, idAddr[:]...)
	p = append(p, 0)
	p = append(p, randomBytes(64, 7)...)
	p = append(p, 0)                             // no private key
	p = append(p, 4, 203, 0, 113, 7, 0x26, 0xf1) // InetAddress of the root
	return ztPacket(ztRoot, src, 0, 1, p, 9)
}

func softEtherPackBytes(elems ...any) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(elems)/2))
	for i := 0; i < len(elems); i += 2 {
		name := elems[i].(string)
		b = binary.BigEndian.AppendUint32(b, uint32(len(name)+1))
		b = append(b, name...)
		switch v := elems[i+1].(type) {
		case int:
			b = binary.BigEndian.AppendUint32(b, 0)
			b = binary.BigEndian.AppendUint32(b, 1)
			b = binary.BigEndian.AppendUint32(b, uint32(v))
		case string:
			b = binary.BigEndian.AppendUint32(b, 2)
			b = binary.BigEndian.AppendUint32(b, 1)
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	}
	return b
}

func tvFrame(seq byte, n int) []byte {
	b := randomBytes(n, uint64(seq)+40)
	b[0] = 0
	b[11], b[12] = 0x17, 0x24
	return b
}

func TestVPNAndRemoteAccessSignatures(t *testing.T) {
	pack := softEtherPackBytes("host_name", "school-laptop", "ddns_fqdn", "vpn123456789.softether.net", "opcode", 3)
	for _, tc := range []struct {
		name          string
		udp           bool
		port          uint16
		msgs          []conv
		class, detail string // "" = no finding
	}{
		{"zerotier hello to a root", true, 9993, []conv{{true, ztHello(ztClient, ztClient)}}, ClassVPN, "zerotier"},
		{"zerotier hello on another port", true, 21003, []conv{{true, ztHello(ztClient, ztClient)}}, ClassVPN, "zerotier"},
		{"zerotier hello with someone else's identity", true, 21003, []conv{{true, ztHello(ztClient, ztRoot)}}, "", ""},
		{"zerotier encrypted exchange on 9993", true, 9993, []conv{
			{true, ztPacket(ztRoot, ztClient, 0x08, 0x87, randomBytes(60, 1), 1)},
			{false, ztPacket(ztClient, ztRoot, 0x08, 0x42, randomBytes(80, 2), 3)},
		}, ClassVPN, "zerotier"},
		{"zerotier-looking reply that does not answer", true, 9993, []conv{
			{true, ztPacket(ztRoot, ztClient, 0x08, 0x87, randomBytes(60, 1), 1)},
			{false, ztPacket(ztRoot, ztClient, 0x08, 0x42, randomBytes(80, 2), 3)},
		}, "", ""},
		{"random datagrams on 9993", true, 9993, []conv{{true, randomBytes(120, 5)}, {false, randomBytes(120, 6)}}, "", ""},

		{"teamviewer udp on 5938", true, 5938, []conv{{true, tvFrame(0, 40)}, {false, tvFrame(0, 40)}}, ClassRemoteAccess, "teamviewer"},
		{"one teamviewer datagram", true, 5938, []conv{{true, tvFrame(0, 40)}}, "", ""},
		{"teamviewer udp elsewhere needs four", true, 40001, []conv{{true, tvFrame(0, 40)}, {false, tvFrame(0, 40)}, {true, tvFrame(0, 60)}, {false, tvFrame(0, 60)}}, ClassRemoteAccess, "teamviewer"},
		{"two teamviewer-like datagrams elsewhere", true, 40001, []conv{{true, tvFrame(0, 40)}, {false, tvFrame(0, 40)}}, "", ""},

		{"softether watermark post", false, 443, []conv{{true, []byte("POST /vpnsvc/connect.cgi HTTP/1.1\r\nHost: vpn.example\r\nContent-Type: image/jpeg\r\nContent-Length: 1411\r\n\r\nGIF89a")}}, ClassVPN, "softether"},
		{"softether pack post", false, 5555, []conv{{true, []byte("POST /vpnsvc/vpn.cgi HTTP/1.1\r\nHost: vpn.example\r\nContent-Type: application/octet-stream\r\n\r\n")}}, ClassVPN, "softether"},
		{"ordinary post", false, 80, []conv{{true, []byte("POST /vpnsvc/status HTTP/1.1\r\nHost: www.example\r\n\r\n")}}, "", ""},
		{"softether nat-traversal reply", true, 5004, []conv{{true, randomBytes(40, 9)}, {false, []byte("IP=198.51.100.23,PORT=48211")}}, ClassVPN, "softether"},
		{"not an address", true, 5004, []conv{{false, []byte("IP=not-an-address,PORT=48211")}}, "", ""},
		{"softether pack datagram", true, 5004, []conv{{true, pack}}, ClassVPN, "softether"},
		{"truncated pack", true, 5004, []conv{{true, pack[:len(pack)-3]}}, "", ""},
		{"pack with trailing bytes", true, 5004, []conv{{true, append(append([]byte(nil), pack...), 0, 0, 0, 0)}}, "", ""},

		{"ultrasurf", false, 443, []conv{{true, append([]byte(ultraSurfMagic), randomBytes(120, 11)...)}}, ClassVPN, "ultrasurf"},
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

func TestSoftEtherPackParser(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"two elements", softEtherPackBytes("host_name", "pc", "opcode", 1), true},
		{"one element is too little structure", softEtherPackBytes("host_name", "a-rather-long-host-name-to-pass-the-floor"), false},
		{"name with a space", softEtherPackBytes("host name", "pc", "opcode", 1), false},
		{"empty", nil, false},
		{"huge count", append([]byte{0, 0, 1, 0}, make([]byte, 40)...), false},
	} {
		if got := softEtherPack(tc.b); got != tc.want {
			t.Errorf("%s: softEtherPack = %v, want %v", tc.name, got, tc.want)
		}
	}
}

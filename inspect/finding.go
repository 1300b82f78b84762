package inspect

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Finding classes. They are the "what" of a policy rule and the categories
// the DSL sees.
const (
	ClassVPN              = "vpn"
	ClassTor              = "tor"
	ClassProxy            = "proxy"
	ClassDoH              = "doh"
	ClassDoT              = "dot"
	ClassDoQ              = "doq"
	ClassECH              = "ech"
	ClassSSH              = "ssh"
	ClassRemoteAccess     = "remote-access"
	ClassTunnel           = "tunnel"
	ClassTethering        = "tethering"
	ClassUnapprovedDevice = "unapproved-device"
	ClassRogueDHCP        = "rogue-dhcp"
)

// Classes lists every class in a stable order.
var Classes = []string{
	ClassVPN, ClassTor, ClassProxy, ClassDoH, ClassDoT, ClassDoQ, ClassECH,
	ClassSSH, ClassRemoteAccess, ClassTunnel, ClassTethering,
	ClassUnapprovedDevice, ClassRogueDHCP,
}

// Finding is one observation of a bypass attempt or a device problem. Src is
// the device on our side (for rogue-dhcp: the rogue server), Dst the far end.
type Finding struct {
	File     string           `json:"file,omitempty"`
	Time     time.Time        `json:"time"`
	SrcIP    netip.Addr       `json:"src_ip"`
	SrcMAC   net.HardwareAddr `json:"src_mac"`
	DstIP    netip.Addr       `json:"dst_ip"`
	DstPort  uint16           `json:"dst_port"`
	Proto    string           `json:"proto"`
	Class    string           `json:"class"`
	Detail   string           `json:"detail"`
	Evidence string           `json:"evidence"`
	// Confidence says how the class was decided: a parsed handshake, a
	// fingerprint or heuristic, or the client's side alone.
	Confidence Confidence `json:"confidence,omitempty"`
}

// String renders the finding as one readable line.
func (f Finding) String() string {
	mac := "-"
	if len(f.SrcMAC) > 0 {
		mac = f.SrcMAC.String()
	}
	dst := "-"
	if f.DstIP.IsValid() {
		dst = netip.AddrPortFrom(f.DstIP, f.DstPort).String()
	}
	s := fmt.Sprintf("%s %s src=%s mac=%s dst=%s proto=%s detail=%s confidence=%s evidence=%q",
		f.Time.UTC().Format(time.RFC3339Nano), f.Class, f.SrcIP, mac, dst, f.Proto, f.Detail, f.Confidence, f.Evidence)
	if f.File != "" {
		s = f.File + ": " + s
	}
	return s
}

// Sink receives findings. The engine calls it from the goroutine that feeds
// it packets, so an implementation that blocks slows inspection down.
type Sink interface {
	HandleFinding(Finding)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Finding)

// HandleFinding calls fn(f).
func (fn SinkFunc) HandleFinding(f Finding) { fn(f) }

// findingJSON is the wire form: the MAC as text, not base64 bytes.
type findingJSON struct {
	File     string     `json:"file,omitempty"`
	Time     time.Time  `json:"time"`
	SrcIP    netip.Addr `json:"src_ip"`
	SrcMAC   string     `json:"src_mac"`
	DstIP    netip.Addr `json:"dst_ip"`
	DstPort  uint16     `json:"dst_port"`
	Proto    string     `json:"proto"`
	Class    string     `json:"class"`
	Detail   string     `json:"detail"`
	Evidence string     `json:"evidence"`
	// Confidence is empty in findings written before it existed.
	Confidence Confidence `json:"confidence,omitempty"`
}

// MarshalJSON writes the finding with src_mac as "aa:bb:cc:dd:ee:ff"
// (empty when unknown).
func (f Finding) MarshalJSON() ([]byte, error) {
	return json.Marshal(f.toJSON())
}

func (f Finding) toJSON() findingJSON {
	mac := ""
	if len(f.SrcMAC) > 0 {
		mac = f.SrcMAC.String()
	}
	return findingJSON{f.File, f.Time, f.SrcIP, mac, f.DstIP, f.DstPort, f.Proto, f.Class, f.Detail, f.Evidence, f.Confidence}
}

// UnmarshalJSON reads what MarshalJSON writes.
func (f *Finding) UnmarshalJSON(b []byte) error {
	var j findingJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var mac net.HardwareAddr
	if j.SrcMAC != "" {
		var err error
		if mac, err = net.ParseMAC(j.SrcMAC); err != nil {
			return fmt.Errorf("inspect: finding src_mac: %w", err)
		}
	}
	*f = Finding{j.File, j.Time, j.SrcIP, mac, j.DstIP, j.DstPort, j.Proto, j.Class, j.Detail, j.Evidence, j.Confidence}
	return nil
}

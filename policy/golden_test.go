package policy

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The golden test pins the netlink messages the enforcer sends to build its
// table, rendered as text, so that a change to the compiled rules shows up
// as a diff of policy/testdata/table.golden in review, without a kernel or
// root. After an intended change, rewrite the file with
//
//	go test ./policy -run TestCompiledTableGolden -update
//
// and read the diff before committing it.
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// exampleNetwork is the network of ../shared/gatehouse.example.yaml: its four
// segments, uplink, servers and admin address.
func exampleNetwork() Network {
	seg := func(name, iface, subnet, gw string) SegmentSpec {
		return Defaults(name, iface, netip.MustParsePrefix(subnet), netip.MustParseAddr(gw), name == "visitor")
	}
	return Network{
		Uplink: "wan0",
		Segments: []SegmentSpec{
			seg("staff", "lan.10", "10.10.0.0/22", "10.10.0.1"),
			seg("pupil", "lan.20", "10.20.0.0/21", "10.20.0.1"),
			seg("byod", "lan.30", "10.30.0.0/22", "10.30.0.1"),
			seg("visitor", "lan.40", "10.40.0.0/23", "10.40.0.1"),
		},
		Servers:    map[string]netip.Prefix{"mis": netip.MustParsePrefix("10.5.0.0/24")},
		AdminAddr:  netip.MustParseAddrPort("10.99.0.1:8443"),
		PortalPort: 8080,
		DNSPort:    5353,
		// The daemon's second guard port, for queries to other resolvers.
		DNSRedirectPort: 5392,
	}
}

// noFlows stands in for conntrack: there is no kernel here.
type noFlows struct{}

func (noFlows) KillFlows(context.Context, netip.Addr) (int, error) { return 0, nil }
func (noFlows) Close() error                                       { return nil }

func TestCompiledTableGolden(t *testing.T) {
	var sent []netlink.Message
	dial := func(req []netlink.Message) ([]netlink.Message, error) {
		for _, m := range req {
			if m.Header.Flags&netlink.Dump != 0 {
				return nil, nil // a read: the table does not exist yet
			}
		}
		sent = append(sent, req...)
		return req, nil // echoed messages stand in for the kernel's acks
	}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	e, err := New(Options{Now: func() time.Time { return t0 }, Flows: noFlows{}, testDial: dial}, exampleNetwork(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	// One device in each kind of set, recorded before the first Apply as a
	// daemon does at start.
	ctx := context.Background()
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	steps := []error{
		e.Approve(ctx, Device{MAC: mac("02:00:00:00:30:0a"), IP: netip.MustParseAddr("10.30.0.10")}),
		e.Quarantine(ctx, Device{MAC: mac("02:00:00:00:20:0b"), IP: netip.MustParseAddr("10.20.0.11")}),
		e.AdmitWith(ctx, Device{MAC: mac("02:00:00:00:40:0a"), IP: netip.MustParseAddr("10.40.0.10")}, t0.Add(2*time.Hour),
			Limits{UpBps: 250_000, DownBps: 1_000_000, QuotaBytes: 500 << 20}),
		e.Block(ctx, netip.MustParseAddr("192.0.2.66")),
		e.Apply(ctx),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got := renderMessages(t, sent)

	path := filepath.Join("testdata", "table.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("the compiled table differs from %s; if the change is intended, rerun with -update and review the diff.\n%s",
			path, lineDiff(string(want), got))
	}
}

// renderMessages turns a netlink batch into one line per object, decoding
// each message with the nftables library's own parsers: every message is
// played back, alone, as the answer to the matching dump request.
func renderMessages(t *testing.T, msgs []netlink.Message) string {
	t.Helper()
	var b strings.Builder
	sets := map[string]*nftables.Set{}
	for _, m := range msgs {
		typ := m.Header.Type
		if typ>>8 != unix.NFNL_SUBSYS_NFTABLES {
			continue // batch begin and end
		}
		switch uint16(typ & 0xff) {
		case unix.NFT_MSG_NEWTABLE:
			fmt.Fprintf(&b, "add table %s %s\n", familyName(m), attrString(t, m, unix.NFTA_TABLE_NAME))
		case unix.NFT_MSG_DELTABLE:
			fmt.Fprintf(&b, "delete table %s %s\n", familyName(m), attrString(t, m, unix.NFTA_TABLE_NAME))
		case unix.NFT_MSG_NEWCHAIN:
			cs, err := replay(m).ListChains()
			if err != nil || len(cs) != 1 {
				t.Fatalf("decode chain: %v (%d)", err, len(cs))
			}
			c := cs[0]
			fmt.Fprintf(&b, "add chain %s", c.Name)
			if c.Hooknum != nil {
				fmt.Fprintf(&b, " { type %s hook %s priority %d", c.Type, hookNames[*c.Hooknum], *c.Priority)
				if c.Policy != nil {
					fmt.Fprintf(&b, " policy %s", map[nftables.ChainPolicy]string{nftables.ChainPolicyAccept: "accept", nftables.ChainPolicyDrop: "drop"}[*c.Policy])
				}
				b.WriteString(" }")
			}
			b.WriteString("\n")
		case unix.NFT_MSG_NEWSET:
			s := decodeSet(t, m)
			sets[s.Name] = s
			fmt.Fprintf(&b, "add set %s { type %s", s.Name, s.KeyType.Name)
			if s.IsMap {
				fmt.Fprintf(&b, " : %s", s.DataType.Name)
			}
			for _, f := range []struct {
				on   bool
				name string
			}{{s.Anonymous, "anonymous"}, {s.Constant, "constant"}, {s.Interval, "interval"}, {s.Dynamic, "dynamic"}, {s.HasTimeout, "timeout"}} {
				if f.on {
					b.WriteString(" " + f.name)
				}
			}
			if s.Timeout != 0 {
				fmt.Fprintf(&b, " timeout %v", s.Timeout)
			}
			b.WriteString(" }\n")
		case unix.NFT_MSG_NEWSETELEM:
			name := attrString(t, m, unix.NFTA_SET_ELEM_LIST_SET)
			set, ok := sets[name]
			if !ok {
				t.Fatalf("elements of %s before the set", name)
			}
			els, err := replay(m).GetSetElements(set)
			if err != nil {
				t.Fatalf("decode elements of %s: %v", name, err)
			}
			for _, el := range els {
				fmt.Fprintf(&b, "add element %s { %s", name, showKey(set.KeyType.Name, el.Key))
				if len(el.KeyEnd) > 0 {
					fmt.Fprintf(&b, "-%s", showKey(set.KeyType.Name, el.KeyEnd))
				}
				if v, ok := decodeVerdict(el.Val); ok {
					fmt.Fprintf(&b, " : %s", v)
				} else if len(el.Val) > 0 {
					fmt.Fprintf(&b, " : %s", showBytes(el.Val))
				}
				if el.VerdictData != nil {
					fmt.Fprintf(&b, " : %s", showExpr(el.VerdictData))
				}
				if el.IntervalEnd {
					b.WriteString(" interval-end")
				}
				if el.Timeout != 0 {
					fmt.Fprintf(&b, " timeout %v", el.Timeout)
				}
				b.WriteString(" }\n")
			}
		case unix.NFT_MSG_NEWOBJ:
			os, err := replay(m).GetObjects(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet})
			if err != nil || len(os) != 1 {
				t.Fatalf("decode object: %v (%d)", err, len(os))
			}
			fmt.Fprintf(&b, "add object %s\n", showStruct(os[0], "Table"))
		case unix.NFT_MSG_NEWRULE:
			rs, err := replay(m).GetRules(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}, &nftables.Chain{})
			if err != nil || len(rs) != 1 {
				t.Fatalf("decode rule: %v (%d)", err, len(rs))
			}
			r := rs[0]
			fmt.Fprintf(&b, "add rule %s", r.Chain.Name)
			for _, x := range r.Exprs {
				b.WriteString(" [" + showExpr(x) + "]")
			}
			if c, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok {
				fmt.Fprintf(&b, " # %s", c)
			}
			b.WriteString("\n")
		default:
			fmt.Fprintf(&b, "message type %#x: %s\n", typ, hex.EncodeToString(m.Data))
		}
	}
	return b.String()
}

// replay is a connection whose "kernel" answers any request with m alone,
// addressed to that request.
func replay(m netlink.Message) *nftables.Conn {
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		r := m
		r.Header.Sequence, r.Header.PID = req[0].Header.Sequence, req[0].Header.PID
		r.Header.Flags = 0
		return []netlink.Message{r}, nil
	}))
	if err != nil {
		panic(err) // New only fails on options a test dial does not use
	}
	return c
}

var hookNames = map[nftables.ChainHook]string{*nftables.ChainHookPrerouting: "prerouting", *nftables.ChainHookInput: "input",
	*nftables.ChainHookForward: "forward", *nftables.ChainHookOutput: "output", *nftables.ChainHookPostrouting: "postrouting"}

// decodeSet decodes a NEWSET message. The library reads a verdict map's
// data type into the key type, so the key type is decoded from the message
// without its data type, and the verdict named here.
func decodeSet(t *testing.T, m netlink.Message) *nftables.Set {
	t.Helper()
	tbl := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	ss, err := replay(m).GetSets(tbl)
	if err != nil || len(ss) != 1 {
		t.Fatalf("decode set: %v (%d)", err, len(ss))
	}
	s := ss[0]
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		t.Fatal(err)
	}
	ad.ByteOrder = binary.BigEndian
	var keep []netlink.Attribute
	verdict := false
	for ad.Next() {
		if ad.Type() == unix.NFTA_SET_DATA_TYPE {
			verdict = ad.Uint32() == 0xffffff00
			continue
		}
		keep = append(keep, netlink.Attribute{Type: ad.Type(), Data: ad.Bytes()})
	}
	if verdict {
		data, err := netlink.MarshalAttributes(keep)
		if err != nil {
			t.Fatal(err)
		}
		k := m
		k.Data = append(append([]byte(nil), m.Data[:4]...), data...)
		ks, err := replay(k).GetSets(tbl)
		if err != nil || len(ks) != 1 {
			t.Fatalf("decode set key: %v (%d)", err, len(ks))
		}
		s.KeyType, s.DataType = ks[0].KeyType, nftables.TypeVerdict
	}
	return s
}

// decodeVerdict reads a verdict map element's data (NFTA_VERDICT_CODE and
// NFTA_VERDICT_CHAIN attributes).
func decodeVerdict(b []byte) (string, bool) {
	if len(b) == 0 {
		return "", false
	}
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return "", false
	}
	ad.ByteOrder = binary.BigEndian
	v := &expr.Verdict{}
	code := false
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_VERDICT_CODE:
			v.Kind, code = expr.VerdictKind(int32(ad.Uint32())), true
		case unix.NFTA_VERDICT_CHAIN:
			v.Chain = ad.String()
		}
	}
	if ad.Err() != nil || !code {
		return "", false
	}
	return verdictName(v), true
}

// showKey renders a set key, a concatenation field by field (each field
// padded to four bytes, as the kernel keeps them).
func showKey(typ string, b []byte) string {
	sizes := map[string]int{"ether_addr": 6, "ipv4_addr": 4, "ipv6_addr": 16, "inet_service": 2, "inet_proto": 1, "ifname": 16, "mark": 4}
	parts := strings.Split(typ, " . ")
	if len(parts) < 2 {
		return showBytes(b)
	}
	var out []string
	for _, p := range parts {
		n, ok := sizes[p]
		if !ok || len(b) < n {
			return showBytes(b)
		}
		out = append(out, showBytes(b[:n]))
		b = b[min(len(b), (n+3)/4*4):]
	}
	return strings.Join(out, " . ")
}

func familyName(m netlink.Message) string {
	if len(m.Data) > 0 && m.Data[0] == unix.NFPROTO_INET {
		return "inet"
	}
	return fmt.Sprintf("family(%d)", m.Data[0])
}

// attrString returns the string attribute typ of a nftables message.
func attrString(t *testing.T, m netlink.Message, typ uint16) string {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		t.Fatal(err)
	}
	for ad.Next() {
		if ad.Type() == typ {
			return ad.String()
		}
	}
	t.Fatalf("message %#x has no attribute %d", m.Header.Type, typ)
	return ""
}

// showExpr renders an expression as its type and fields, with byte fields
// made readable.
func showExpr(x any) string {
	switch v := x.(type) {
	case *expr.Verdict:
		return verdictName(v)
	case *expr.Meta:
		name := metaKeys[v.Key]
		if name == "" {
			name = fmt.Sprintf("key(%d)", v.Key)
		}
		if v.SourceRegister {
			return fmt.Sprintf("meta set %s from r%d", name, v.Register)
		}
		return fmt.Sprintf("meta %s -> r%d", name, v.Register)
	case *expr.Cmp:
		return fmt.Sprintf("cmp r%d %s %s", v.Register, cmpOps[v.Op], showBytes(v.Data))
	case *expr.Payload:
		return fmt.Sprintf("payload %s+%d/%d -> r%d", payloadBases[v.Base], v.Offset, v.Len, v.DestRegister)
	}
	return showStruct(x, "SetID")
}

var (
	metaKeys = map[expr.MetaKey]string{expr.MetaKeyLEN: "length", expr.MetaKeyPROTOCOL: "protocol", expr.MetaKeyMARK: "mark",
		expr.MetaKeyIIF: "iif", expr.MetaKeyOIF: "oif", expr.MetaKeyIIFNAME: "iifname", expr.MetaKeyOIFNAME: "oifname",
		expr.MetaKeyIIFTYPE: "iiftype", expr.MetaKeyOIFTYPE: "oiftype", expr.MetaKeyNFPROTO: "nfproto", expr.MetaKeyL4PROTO: "l4proto",
		expr.MetaKeyPKTTYPE: "pkttype", expr.MetaKeySKUID: "skuid"}
	cmpOps       = map[expr.CmpOp]string{expr.CmpOpEq: "==", expr.CmpOpNeq: "!=", expr.CmpOpLt: "<", expr.CmpOpLte: "<=", expr.CmpOpGt: ">", expr.CmpOpGte: ">="}
	payloadBases = map[expr.PayloadBase]string{expr.PayloadBaseLLHeader: "link", expr.PayloadBaseNetworkHeader: "network", expr.PayloadBaseTransportHeader: "transport"}
)

func verdictName(v *expr.Verdict) string {
	names := map[expr.VerdictKind]string{expr.VerdictAccept: "accept", expr.VerdictDrop: "drop", expr.VerdictReturn: "return",
		expr.VerdictJump: "jump", expr.VerdictGoto: "goto", expr.VerdictContinue: "continue", expr.VerdictBreak: "break"}
	s, ok := names[v.Kind]
	if !ok {
		s = fmt.Sprintf("verdict(%d)", v.Kind)
	}
	if v.Chain != "" {
		s += " " + v.Chain
	}
	return s
}

// showStruct prints a (pointer to a) struct as "Type field=value ...",
// leaving out zero fields and those named in skip.
func showStruct(x any, skip ...string) string {
	v := reflect.ValueOf(x)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return fmt.Sprintf("%v", x)
	}
	parts := []string{strings.ToLower(v.Type().Name())}
	for i := range v.NumField() {
		f, fv := v.Type().Field(i), v.Field(i)
		if !f.IsExported() || fv.IsZero() || slices.Contains(skip, f.Name) {
			continue
		}
		var s string
		switch val := fv.Interface().(type) {
		case []byte:
			s = showBytes(val)
		case *expr.Verdict:
			s = verdictName(val)
		case []expr.Any:
			var in []string
			for _, e := range val {
				in = append(in, showExpr(e))
			}
			s = "[" + strings.Join(in, " ") + "]"
		default:
			if fv.Kind() == reflect.Pointer || fv.Kind() == reflect.Struct {
				s = showStruct(fv.Interface())
			} else {
				s = fmt.Sprintf("%v", val)
			}
		}
		parts = append(parts, strings.ToLower(f.Name)+"="+s)
	}
	return strings.Join(parts, " ")
}

// showBytes renders key and comparison data: an interface name as text, an
// address as an address, anything else in hex.
func showBytes(b []byte) string {
	if s := strings.TrimRight(string(b), "\x00"); s != "" && len(b) >= 16 && isPrintable(s) {
		return fmt.Sprintf("%q", s)
	}
	switch len(b) {
	case 4:
		return netip.AddrFrom4([4]byte(b)).String()
	case 6:
		return net.HardwareAddr(b).String()
	case 16:
		return netip.AddrFrom16([16]byte(b)).String()
	}
	return "0x" + hex.EncodeToString(b)
}

func isPrintable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || r > unicode.MaxASCII {
			return false
		}
	}
	return true
}

// lineDiff lists the lines only in want (-) and only in got (+), in order,
// enough to see what moved without a diff tool.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	inW, inG := map[string]int{}, map[string]int{}
	for _, l := range w {
		inW[l]++
	}
	for _, l := range g {
		inG[l]++
	}
	var out []string
	for _, l := range w {
		if inG[l] == 0 {
			out = append(out, "- "+l)
		} else {
			inG[l]--
		}
	}
	for _, l := range g {
		if inW[l] == 0 {
			out = append(out, "+ "+l)
		} else {
			inW[l]--
		}
	}
	if len(out) > 40 {
		out = append(out[:40], fmt.Sprintf("... and %d more lines", len(out)-40))
	}
	return strings.Join(out, "\n")
}
